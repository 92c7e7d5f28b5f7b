"""An invited peer on a phone: accepts the invitation, signs in, sees the account page, signs out."""

from __future__ import annotations

import re

from tests.browser.conftest import shot

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
    cookies = page.context.cookies()
    assert [(c["name"], c["secure"], c["httpOnly"], c["sameSite"]) for c in cookies if "mapsvc" in c["name"]] == [
        ("__Host-mapsvc", True, True, "Lax")
    ]

    page.click("#logout")
    page.wait_for_url(service.url + "/")
    assert not [c for c in page.context.cookies() if "mapsvc" in c["name"]]
    page.goto(service.url + "/account")
    assert "/login?next=" in page.url
    assert watched["errors"] == []
    assert all(r.url.startswith(service.url) for r in watched["requests"])
