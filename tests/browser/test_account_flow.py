"""An invited peer on a phone: accepts the invitation, signs in, sees the account page, signs out.

A moderator whose sign-in is no longer fresh turns two-factor on: the phone asks for the password
again first, then shows the secret.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp

from mapsvc.core.roles import Role
from tests.browser.conftest import shot
from tests.helpers import PASSWORD as STAFF_PASSWORD
from tests.helpers import make_account

PASSWORD = "a long phrase for the phone 4"


def test_accept_an_invitation_sign_in_and_out(page, service, watched):
    made = service.app.test_cli_runner().invoke(args=["admin", "invite", "--role", "peer", "--days", "1"])
    link = re.search(r"link: (\S+)", made.output).group(1)

    page.goto(service.url + link)
    shot(page, "20-invitation")
    page.fill("input[name=username]", "river-phone")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password_repeat]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/login?welcome=1")
    page.fill("input[name=username]", "river-phone")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/account")
    shot(page, "21-account")

    assert page.text_content("#account-username") == "river-phone"
    assert page.text_content("#account-role") == "Trusted peer"
    assert _cookies(page) == [
        ("__Host-mapsvc", "/", True, True, "Lax"),
        ("__Secure-pref", "/login", True, True, "Strict"),
    ]

    page.click("#logout")
    page.wait_for_url(service.url + "/")
    assert _cookies(page) == [("__Secure-pref", "/login", True, True, "Strict")]
    page.goto(service.url + "/account")
    assert "/login?next=" in page.url
    assert watched["errors"] == []
    assert all(r.url.startswith(service.url) for r in watched["requests"])


def _cookies(page) -> list[tuple[str, str, bool, bool, str]]:
    """Return what the phone keeps in cookies: name, path, Secure, HttpOnly, SameSite."""
    cookies = page.context.cookies()
    return sorted((c["name"], c["path"], c["secure"], c["httpOnly"], c["sameSite"]) for c in cookies)


def _sign_in_on_the_phone(page, service, username: str, lang: str = "en") -> None:
    page.goto(f"{service.url}/login?lang={lang}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/account")


def test_signing_out_can_forget_the_browser(page, service, watched):
    make_account(service.app, Role.PEER, "fern-phone")
    _sign_in_on_the_phone(page, service, "fern-phone", "ru")
    offered = page.text_content("label:has(#forget-browser)").strip()

    page.check("#forget-browser")
    page.click("#logout")
    page.wait_for_url(service.url + "/")

    assert offered == "Забыть этот браузер"
    assert [name for name, *_ in _cookies(page)] == ["lang"]  # the language chosen, nothing of the account
    assert watched["errors"] == []


def test_the_quick_exit_forgets_the_browser(page, service, watched):
    make_account(service.app, Role.PEER, "moss-phone")
    page.route("https://neutral.example/**", lambda r: r.fulfill(body="<p>weather</p>", content_type="text/html"))
    _sign_in_on_the_phone(page, service, "moss-phone")
    remembered = [name for name, *_ in _cookies(page)]

    page.click("#quick-exit")
    page.wait_for_url("https://neutral.example/**")
    for _ in range(50):  # the beacon may arrive after the neutral page has loaded
        if "__Secure-pref" not in [name for name, *_ in _cookies(page)]:
            break
        page.wait_for_timeout(100)

    assert "__Secure-pref" in remembered
    assert "__Secure-pref" not in [name for name, *_ in _cookies(page)]
    assert watched["errors"] == []


def test_guesses_from_many_addresses_do_not_keep_the_phone_out(page, service, watched):
    """The phone signed in before; then others guess the name's password from many addresses."""
    make_account(service.app, Role.PEER, "sky-phone")
    page.goto(service.url + "/login?lang=en")
    page.fill("input[name=username]", "sky-phone")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/account")
    page.click("#logout")
    page.wait_for_url(service.url + "/")
    for number in range(60):
        form = {"username": "sky-phone", "password": f"a guess {number}"}
        guesser = service.app.test_client()
        assert (
            guesser.post("/login", data=form, environ_base={"REMOTE_ADDR": f"2001:db8:{number:x}::1"}).status_code
            == 401
        )
    stranger = service.app.test_client()
    refused = stranger.post("/login", data={"username": "sky-phone", "password": STAFF_PASSWORD})

    page.goto(service.url + "/login")
    page.fill("input[name=username]", "sky-phone")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/account")

    assert refused.status_code == 401  # a browser that never signed in to it waits
    assert page.text_content("#account-username") == "sky-phone"
    assert watched["errors"] == []


def test_turning_two_factor_on_asks_for_the_password_again(page, service, watched):
    make_account(service.app, Role.MODERATOR, "lake-phone")
    clock = service.app.config["CLOCK"]
    page.goto(service.url + "/login?lang=en")
    page.fill("input[name=username]", "lake-phone")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/account")
    signed_in_at = clock.now
    clock.now += timedelta(minutes=service.app.config["REAUTH_MINUTES"], seconds=1)
    try:
        page.click("text=Turn two-factor on")
        page.wait_for_url("**/account/confirm?next=/account/totp")
        shot(page, "22-confirm")
        asked = page.text_content("main h1")
        page.fill("input[name=password]", STAFF_PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url("**/account/totp")
        secret = page.text_content("#totp-secret")
        page.fill("input[name=code]", pyotp.TOTP(secret).at(clock.now))
        page.click("main button[type=submit]")
        page.wait_for_url("**/account?done=totp")
        shown = page.text_content("main [role=status]")
    finally:
        clock.now = signed_in_at

    assert asked == "Confirm it is you"
    assert shown == "Two-factor sign-in is on."
    assert watched["errors"] == []
