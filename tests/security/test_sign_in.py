"""Sign-in: where it sends the browser, how guessing is slowed, fresh sign-in, TOTP secrets at rest.

Findings #3 (open redirect after sign-in), #4 (a right password reset the count of wrong codes),
#7 (five wrong posts locked any known username out), #8 (a signed-in session replaced the TOTP
secret without the code or password) and #12 (TOTP secrets stored in plain text); then the review
of #12: an IPv6 /64 counted as 2^64 sources, guesses spread over many sources, parallel guesses
passing the count, lost counts of wrong codes on PostgreSQL, and times kept to the second.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyotp
import pytest
from ada_url import join_url
from argon2 import PasswordHasher
from gunicorn.app.base import BaseApplication
from limits import parse_many
from sqlalchemy import MetaData, create_engine, select, text

from mapsvc import create_app
from mapsvc.core.roles import Role
from mapsvc.store import totp as totp_module
from mapsvc.store.accounts import make_invitation
from mapsvc.store.db import Store
from mapsvc.store.models import Account, Invitation, LoginSession
from mapsvc.web.auth.devices import SECURE_COOKIE as DEVICE_COOKIE
from tests.conftest import NOW
from tests.helpers import PASSWORD, make_account, page_csrf_token, sign_in

#: Where the tests' service is, for resolving a Location as a browser does.
SITE = "https://map.example/login"
NEW_PASSWORD = "a quite long pass phrase 7"
NOT_A_CODE = "12345x"  # never any step's code

# --- helpers ---------------------------------------------------------------------------------------


def _login(client, username: str, password: str = PASSWORD, **kwargs: Any):
    return client.post("/login", data={"username": username, "password": password, **kwargs.pop("data", {})}, **kwargs)


def _code_step(client, code: str, **form: str):
    return client.post("/login/totp", data={"code": code, "csrf_token": page_csrf_token(client, "/login/totp"), **form})


def _turn_on(client, csrf: str, clock) -> str:
    """Turn two-factor on from the account page (signed in just now); return the secret."""
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', client.get("/account/totp").get_data(as_text=True)).group(1)
    code = pyotp.TOTP(secret).at(clock.now)
    response = client.post("/account/totp", data={"secret": secret, "code": code, "csrf_token": csrf})
    assert response.status_code == 303, response.get_data(as_text=True)
    return secret


def _with_totp(app, clock, username: str = "river", role: str = "moderator") -> str:
    """Make an account with two-factor on; return its secret (the clock moves past the code used)."""
    client = app.test_client()
    secret = _turn_on(client, sign_in(client, app, role, username), clock)
    clock.now += timedelta(minutes=1)
    return secret


def _sql(app, query: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run raw SQL on the app's database, as someone holding a copy of it would."""
    engine = create_engine(app.config["DATABASE_URL"])
    try:
        with engine.begin() as connection:
            result = connection.execute(text(query), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def _browser_target(response) -> str:
    """Return the URL a browser goes to after this redirect (WHATWG parsing, by the ada library)."""
    assert response.status_code == 303, response.get_data(as_text=True)
    return join_url(SITE, response.headers["Location"])


# --- #3: sign-in never sends the browser to another site -----------------------------------------

HOSTILE_NEXT = [
    "/\t/evil.example",  # what ?next=/%09/evil.example decodes to
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "//evil.example",
    "///evil.example",
    " //evil.example",
    "\x01//evil.example",
    "https://evil.example/",
    "https:evil.example",
    "HTTPS://evil.example",
    "javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
]


def _assert_stays_here(response) -> None:
    target = _browser_target(response)
    assert target.startswith("https://map.example/"), target
    assert "evil" not in target


@pytest.mark.parametrize("hostile", HOSTILE_NEXT)
def test_the_sign_in_form_never_sends_the_browser_elsewhere(app, hostile):
    make_account(app, "admin", "boss")

    response = _login(app.test_client(), "boss", data={"next": hostile})

    _assert_stays_here(response)


@pytest.mark.parametrize(
    "query",
    ["/%09/evil.example", "/%0A/evil.example", "/%5Cevil.example", "/%2F%2Fevil.example", "%2F%2Fevil.example"],
)
def test_a_signed_in_visit_to_the_sign_in_page_never_leaves(app, query):
    client = app.test_client()
    sign_in(client, app, "peer")

    response = client.get(f"/login?next={query}")

    _assert_stays_here(response)


def test_the_sign_in_page_does_not_carry_a_hostile_next_into_its_form(app):
    page = app.test_client().get("/login?next=/%09/evil.example").get_data(as_text=True)

    assert 'name="next" value=""' in page


def test_the_two_factor_step_never_sends_the_browser_elsewhere(app, clock):
    secret = _with_totp(app, clock)
    phone = app.test_client()
    _login(phone, "river", data={"next": "/\t/evil.example"})

    response = _code_step(phone, pyotp.TOTP(secret).at(clock.now), next="/\t/evil.example")

    _assert_stays_here(response)


@pytest.mark.parametrize("local", ["/admin/audit", "/admin/audit?before=3", "/moderate?page=2#top", "/%2F%2Fevil"])
def test_a_path_on_this_site_is_still_where_sign_in_goes_on_to(app, local):
    make_account(app, "admin", "boss")

    response = _login(app.test_client(), "boss", data={"next": local})

    assert response.headers["Location"] == local
    assert _browser_target(response) == "https://map.example" + local


# --- #4: wrong codes have a count of their own ------------------------------------------------------


def test_code_guesses_stay_counted_when_a_right_password_comes_between(app, clock):
    """Whoever holds the password must not get unlimited code guesses by signing in again."""
    secret = _with_totp(app, clock)
    for _ in range(4):  # 12 wrong codes, each group after a right password (in a new browser)
        attacker = app.test_client()
        assert _login(attacker, "river").headers["Location"].startswith("/login/totp")
        for _ in range(3):
            assert _code_step(attacker, NOT_A_CODE).status_code in (401, 429)
    attacker = app.test_client()
    _login(attacker, "river")

    lucky = _code_step(attacker, pyotp.TOTP(secret).at(clock.now))

    assert lucky.status_code == 429
    assert attacker.get("/api/me").get_json()["role"] == "anonymous"


def test_the_owner_gets_in_once_the_codes_have_waited(app, clock):
    secret = _with_totp(app, clock)
    attacker = app.test_client()
    _login(attacker, "river")
    for _ in range(app.config.get("TOTP_MAX_FAILURES", 5)):
        _code_step(attacker, NOT_A_CODE)
    clock.now += timedelta(minutes=app.config.get("TOTP_WAIT_MINUTES", 1), seconds=1)
    owner = app.test_client()
    _login(owner, "river")

    response = _code_step(owner, pyotp.TOTP(secret).at(clock.now))

    assert response.status_code == 303
    assert owner.get("/api/me").get_json()["username"] == "river"


# --- #7: guessing is slowed per source; the owner is never locked out --------------------------------

ATTACKER = {"REMOTE_ADDR": "203.0.113.66"}
OWNER = {"REMOTE_ADDR": "198.51.100.7"}


def test_an_attackers_wrong_passwords_do_not_keep_the_owner_out(app):
    make_account(app, "peer", "river")
    for _ in range(30):  # past every window of LOGIN_FAILURE_LIMIT
        assert _login(app.test_client(), "river", "not the password", environ_base=ATTACKER).status_code == 401

    owner = app.test_client()
    response = _login(owner, "river", environ_base=OWNER)

    assert response.status_code == 303
    assert owner.get("/api/me").get_json()["username"] == "river"


def test_the_attackers_source_is_slowed_even_with_the_right_password(app, monkeypatch):
    make_account(app, "peer", "river")
    checked: list[str] = []
    original = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify", lambda self, h, p: checked.append(p) or original(self, h, p))
    for guess in range(5):
        _login(app.test_client(), "river", f"wrong password {guess}", environ_base=ATTACKER)

    found = _login(app.test_client(), "river", environ_base=ATTACKER)

    assert found.status_code == 401
    assert len(checked) == 6  # the sixth is checked against a decoy, never the account's hash


def test_the_slowed_answers_do_not_tell_which_names_exist(app, monkeypatch):
    make_account(app, "peer", "river")
    verified: list[int] = []
    original = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify", lambda self, h, p: verified.append(1) or original(self, h, p))

    def answers(name: str) -> list[tuple[int, str]]:
        replies = [_login(app.test_client(), name, "not the password", environ_base=ATTACKER) for _ in range(8)]
        return [(r.status_code, r.get_data(as_text=True)) for r in replies]

    existing, unknown = answers("river"), answers("nobody-here")

    assert existing == unknown
    assert verified == [1] * 16


# --- #8: security changes need a fresh sign-in ------------------------------------------------------


def _stale_admin(app, clock) -> tuple[Any, str]:
    """Return an admin's client and CSRF token whose sign-in is older than REAUTH_MINUTES."""
    client = app.test_client()
    csrf = sign_in(client, app, "admin", "boss")
    clock.now += timedelta(minutes=app.config.get("REAUTH_MINUTES", 5), seconds=1)
    return client, csrf


def _account_row(app, username: str) -> tuple[Any, ...]:
    (row,) = _sql(
        app, "SELECT id, role, disabled, totp_secret, password_hash FROM accounts WHERE username = :u", u=username
    )
    return row


def _changes(app, clock) -> dict[str, tuple[str, str, dict[str, str]]]:
    """Return each security change as (method, path, form) for the admin ``boss`` and the peer ``lake``."""
    lake = _account_row(app, "lake")[0]
    secret = pyotp.random_base32()
    return {
        "password": (
            "POST",
            "/account/password",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_repeat": NEW_PASSWORD},
        ),
        "two-factor set-up page": ("GET", "/account/totp", {}),
        "two-factor on": ("POST", "/account/totp", {"secret": secret, "code": pyotp.TOTP(secret).at(clock.now)}),
        "API token": ("POST", "/account/tokens", {"name": "bot", "role": "admin"}),
        "invitation": ("POST", "/admin/invitations", {"role": "admin", "days": "7"}),
        "role": ("POST", f"/admin/accounts/{lake}/role", {"role": "admin"}),
        "disable": ("POST", f"/admin/accounts/{lake}/disable", {}),
    }


def _state(app) -> list[Any]:
    """Return what the security changes would change."""
    return [
        _account_row(app, "boss")[3:],
        _account_row(app, "lake")[1:3],
        _sql(app, "SELECT count(*) FROM api_tokens"),
        _sql(app, "SELECT count(*) FROM invitations"),
    ]


CHANGES = ["password", "two-factor set-up page", "two-factor on", "API token", "invitation", "role", "disable"]


@pytest.mark.parametrize("change", CHANGES)
def test_a_stale_session_cannot_make_a_security_change(app, clock, change):
    make_account(app, "peer", "lake")
    client, csrf = _stale_admin(app, clock)
    method, path, form = _changes(app, clock)[change]
    before = _state(app)

    response = client.open(path, method=method, data={**form, "csrf_token": csrf} if method == "POST" else None)

    assert response.status_code == 303 and response.headers["Location"].startswith("/account/confirm?next=/")
    assert _state(app) == before


@pytest.mark.parametrize("change", CHANGES)
def test_after_confirming_the_password_the_change_is_made(app, clock, change):
    make_account(app, "peer", "lake")
    client, csrf = _stale_admin(app, clock)
    method, path, form = _changes(app, clock)[change]
    before = _state(app)

    confirmed = client.post("/account/confirm", data={"password": PASSWORD, "next": path, "csrf_token": csrf})
    response = client.open(path, method=method, data={**form, "csrf_token": csrf} if method == "POST" else None)

    assert confirmed.status_code == 303 and confirmed.headers["Location"] == path
    assert response.status_code in (200, 201, 303), response.get_data(as_text=True)
    assert (response.status_code == 200) == (method == "GET")
    assert method == "GET" or _state(app) != before


def test_enabling_an_account_needs_a_fresh_sign_in(app, clock):
    lake = make_account(app, "peer", "lake")
    _sql(app, "UPDATE accounts SET disabled = :d WHERE id = :i", d=True, i=lake)
    client, csrf = _stale_admin(app, clock)

    response = client.post(f"/admin/accounts/{lake}/enable", data={"csrf_token": csrf})

    assert response.headers["Location"].startswith("/account/confirm")
    assert _account_row(app, "lake")[2] in (True, 1)


def test_a_session_cannot_replace_the_two_factor_secret_without_the_current_code(app, clock):
    """Finding #8: the thief of a signed-in phone must not move two-factor to their own authenticator."""
    secret = _with_totp(app, clock, "river", "admin")
    thief = app.test_client()
    _login(thief, "river")
    _code_step(thief, pyotp.TOTP(secret).at(clock.now))
    clock.now += timedelta(minutes=app.config.get("REAUTH_MINUTES", 5), seconds=1)
    csrf = page_csrf_token(thief)
    stored = _account_row(app, "river")[3]
    theirs = pyotp.random_base32()

    replaced = thief.post(
        "/account/totp", data={"secret": theirs, "code": pyotp.TOTP(theirs).at(clock.now), "csrf_token": csrf}
    )
    password_only = thief.post(
        "/account/confirm", data={"password": PASSWORD, "next": "/account/totp", "csrf_token": csrf}
    )
    disabled = thief.post("/account/totp/disable", data={"code": NOT_A_CODE, "csrf_token": csrf})

    assert replaced.headers["Location"].startswith("/account/confirm")
    assert password_only.status_code == 422 and "code" in password_only.get_data(as_text=True)
    assert disabled.headers["Location"].startswith("/account/confirm")
    assert _account_row(app, "river")[3] == stored


def test_the_confirmation_counts_wrong_passwords_like_sign_in(app, clock):
    client, csrf = _stale_admin(app, clock)
    for _ in range(5):
        client.post("/account/confirm", data={"password": "not the password", "csrf_token": csrf})

    right = client.post("/account/confirm", data={"password": PASSWORD, "next": "/account/tokens", "csrf_token": csrf})

    assert right.status_code == 422
    assert client.post("/account/tokens", data={"name": "bot", "role": "admin", "csrf_token": csrf}).status_code == 303
    assert _sql(app, "SELECT count(*) FROM api_tokens") == [(0,)]


# --- #12: TOTP secrets are sealed at rest, bound to their account -------------------------------------


def test_the_database_holds_no_totp_secret_in_the_clear(app, clock, migrated_template):
    secret = _with_totp(app, clock)

    ((stored,),) = _sql(app, "SELECT totp_secret FROM accounts WHERE username = 'river'")
    dump = migrated_template.dump(app.config["DATABASE_URL"])

    assert stored and secret not in stored and not re.fullmatch(r"[A-Z2-7=]+", stored)
    assert secret not in dump and secret.lower() not in dump.lower()


def test_a_sealed_secret_copied_to_another_account_does_not_open_there(app, clock):
    secret = _with_totp(app, clock, "river")
    make_account(app, "moderator", "lake")
    _sql(
        app,
        "UPDATE accounts SET totp_secret = (SELECT totp_secret FROM accounts WHERE username = 'river')"
        " WHERE username = 'lake'",
    )
    phone = app.test_client()
    _login(phone, "lake")

    response = _code_step(phone, pyotp.TOTP(secret).at(clock.now))

    assert response.status_code == 503
    assert "unavailable" in response.get_data(as_text=True) and secret not in response.get_data(as_text=True)
    assert phone.get("/api/me").get_json()["role"] == "anonymous"


@pytest.fixture
def keyless(app_config):
    app = create_app({**app_config, "TOTP_ENCRYPTION_KEY": None})
    yield app
    app.extensions["mapsvc.store"].dispose()


def test_without_a_key_two_factor_cannot_be_turned_on(keyless, clock):
    client = keyless.test_client()
    csrf = sign_in(client, keyless, "peer", "river")
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', client.get("/account/totp").get_data(as_text=True)).group(1)

    response = client.post(
        "/account/totp", data={"secret": secret, "code": pyotp.TOTP(secret).at(clock.now), "csrf_token": csrf}
    )

    assert response.status_code == 503 and "tell an admin" in response.get_data(as_text=True)
    assert _account_row(keyless, "river")[3] is None


@pytest.mark.parametrize("key", ["too short", "x" * 44, "dGhlIHRlc3RzJyBUT1RQIGtleSwgMzIgYnl0ZXMgIQ=="])
def test_a_malformed_key_stops_the_start(app_config, key):
    with pytest.raises(ValueError, match="TOTP_ENCRYPTION_KEY must be 32 random bytes"):
        create_app({**app_config, "TOTP_ENCRYPTION_KEY": key})


OTHER_KEY = "YW5vdGhlciBrZXkgb2YgMzIgYnl0ZXMsIHJvdGF0ZWQ="


@pytest.fixture
def no_gunicorn(monkeypatch):
    """Make ``mapsvc serve`` stop where it would start gunicorn (a test must never start serving here)."""

    def refuse(self):
        raise RuntimeError("gunicorn would have started")

    monkeypatch.setattr(BaseApplication, "run", refuse)


def test_serve_refuses_to_start_without_the_key_or_with_a_wrong_one(app, clock, app_config, no_gunicorn):
    _with_totp(app, clock)
    for config, says in [
        ({"TOTP_ENCRYPTION_KEY": None}, "is not set"),
        ({"TOTP_ENCRYPTION_KEY": OTHER_KEY}, "right key"),
    ]:
        other = create_app({**app_config, **config})
        result = other.test_cli_runner().invoke(args=["serve", "--port", "1"])
        other.extensions["mapsvc.store"].dispose()

        assert result.exit_code != 0 and says in result.output


def test_a_wrong_key_answers_a_clear_503_not_a_500(app, clock, app_config):
    secret = _with_totp(app, clock)
    other = create_app({**app_config, "TOTP_ENCRYPTION_KEY": OTHER_KEY})
    phone = other.test_client()
    _login(phone, "river")

    response = _code_step(phone, pyotp.TOTP(secret).at(clock.now))
    other.extensions["mapsvc.store"].dispose()

    assert response.status_code == 503
    assert "two-factor sign-in is unavailable" in response.get_data(as_text=True)


def test_a_new_key_takes_over_from_the_old_one(app, clock, app_config):
    secret = _with_totp(app, clock)
    before = _account_row(app, "river")[3]
    rotated = create_app(
        {
            **app_config,
            "TOTP_ENCRYPTION_KEY": OTHER_KEY,
            "TOTP_ENCRYPTION_OLD_KEYS": [app_config["TOTP_ENCRYPTION_KEY"]],
        }
    )
    done = rotated.test_cli_runner().invoke(args=["accounts", "encrypt-secrets"])
    rotated.extensions["mapsvc.store"].dispose()
    only_new = create_app({**app_config, "TOTP_ENCRYPTION_KEY": OTHER_KEY})
    phone = only_new.test_client()
    _login(phone, "river")

    response = _code_step(phone, pyotp.TOTP(secret).at(clock.now))
    only_new.extensions["mapsvc.store"].dispose()

    assert done.exit_code == 0 and "1 TOTP secrets sealed" in done.output
    assert _account_row(app, "river")[3] != before
    assert response.status_code == 303


# --- #12: the upgrade from 0008 seals what earlier versions kept in the clear -------------------------


@pytest.fixture
def at_0008(migrated_template, tmp_path):
    """Return a database at revision 0008 with an account whose TOTP secret is plain, a session and a token."""
    url = migrated_template.empty(tmp_path)
    store = Store(url)
    store.upgrade("0008")
    store.dispose()
    hour = datetime(2026, 6, 15, 22)  # naive UTC, as the schema stores it
    engine = create_engine(url)
    tables = MetaData()
    tables.reflect(engine, only=["accounts", "login_sessions", "api_tokens"])
    account = {
        "id": 1,
        "username": "river",
        "password_hash": PasswordHasher().hash(PASSWORD),
        "role": "moderator",
        "totp_secret": PLAIN_SECRET,
        "totp_last_step": 1,
        "failed_logins": 3,
        "disabled": False,
        "created_hour": hour,
    }
    session = {"token_hash": "s", "account_id": 1, "expires_at": datetime(2030, 1, 1), "second_factor_done": True}
    token = {"token_hash": "t", "name": "bot", "account_id": 1, "role": "peer", "created_hour": hour, "revoked": False}
    with engine.begin() as connection:
        connection.execute(tables.tables["accounts"].insert(), [account])
        connection.execute(tables.tables["login_sessions"].insert(), [session])
        connection.execute(tables.tables["api_tokens"].insert(), [token])
    engine.dispose()
    yield url
    migrated_template.drop(url)


PLAIN_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_the_upgrade_keeps_sessions_and_tokens_and_the_secrets_are_then_sealed(at_0008, app_config, clock, no_gunicorn):
    Store(at_0008).upgrade()
    app = create_app({**app_config, "DATABASE_URL": at_0008})
    refused = app.test_cli_runner().invoke(args=["serve", "--port", "1"])

    sealed = app.test_cli_runner().invoke(args=["accounts", "encrypt-secrets"])
    phone = app.test_client()
    _login(phone, "river")
    signed_in = _code_step(phone, pyotp.TOTP(PLAIN_SECRET).at(clock.now))
    rows = (_sql(app, "SELECT count(*) FROM login_sessions"), _sql(app, "SELECT count(*) FROM api_tokens"))
    ((stored,),) = _sql(app, "SELECT totp_secret FROM accounts")
    app.extensions["mapsvc.store"].dispose()

    assert refused.exit_code != 0 and "encrypt-secrets" in refused.output
    assert sealed.exit_code == 0 and "1 TOTP secrets sealed" in sealed.output
    assert PLAIN_SECRET not in stored
    assert signed_in.status_code == 303
    assert rows == ([(2,)], [(1,)])  # the old session, and the one just made


# --- review of #12: an IPv6 subscriber is one source, not 2^64 ----------------------------------------


def test_the_addresses_of_one_ipv6_block_share_their_count_of_wrong_passwords(app):
    make_account(app, "peer", "river")
    for host in range(1, 6):
        _login(app.test_client(), "river", "not the password", environ_base={"REMOTE_ADDR": f"2001:db8:66:1::{host}"})

    found = _login(app.test_client(), "river", environ_base={"REMOTE_ADDR": "2001:db8:66:1:ffff::99"})
    elsewhere = _login(app.test_client(), "river", environ_base={"REMOTE_ADDR": "2001:db8:66:2::1"})

    assert found.status_code == 401
    assert elsewhere.status_code == 303


# --- review of #12: parallel guesses are counted before any is checked --------------------------------

PARALLEL = 16


def _checked_against(app, monkeypatch, username: str) -> list[str]:
    """Record every password verified against ``username``'s own hash; each verification is slow.

    The slowness stands for argon2's real cost: a check made before the count and a count made
    after the verification let every parallel post through while the first is still verifying.
    """
    (stored,) = _sql(app, "SELECT password_hash FROM accounts WHERE username = :u", u=username)[0]
    checked: list[str] = []
    original = PasswordHasher.verify

    def slow(self, hash_: str, password: str) -> bool:
        time.sleep(0.05)
        if hash_ == stored:
            checked.append(password)
        return original(self, hash_, password)

    monkeypatch.setattr(PasswordHasher, "verify", slow)
    return checked


def _first_window(app, setting: str) -> int:
    """Return how many wrong passwords the shortest window of a setting allows (5 of "5 per 15 minutes;...")."""
    return min(parse_many(app.config[setting]), key=lambda item: item.get_expiry()).amount


def _at_once(send, count: int = PARALLEL) -> list[int]:
    """Send ``count`` requests from as many threads, released together; return the statuses."""
    start = threading.Barrier(count)

    def one(number: int) -> int:
        start.wait()
        return send(number).status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_parallel_wrong_passwords_get_no_more_checks_than_the_limit(app, monkeypatch):
    make_account(app, "peer", "river")
    checked = _checked_against(app, monkeypatch, "river")

    statuses = _at_once(lambda n: _login(app.test_client(), "river", f"wrong guess number {n}", environ_base=ATTACKER))

    assert statuses == [401] * PARALLEL
    assert len(checked) == _first_window(app, "LOGIN_FAILURE_LIMIT")  # however many arrive together


def test_parallel_wrong_confirmations_get_no_more_checks_than_the_limit(app, clock, monkeypatch):
    client, csrf = _stale_admin(app, clock)
    cookie = client.get_cookie("__Host-mapsvc")
    checked = _checked_against(app, monkeypatch, "boss")

    def confirm(number: int):
        thief = app.test_client()
        thief.set_cookie(cookie.key, cookie.value, domain=cookie.domain)
        return thief.post("/account/confirm", data={"password": f"wrong guess number {number}", "csrf_token": csrf})

    statuses = _at_once(confirm)

    assert statuses == [422] * PARALLEL
    assert len(checked) == _first_window(app, "CONFIRM_FAILURE_LIMIT")


# --- review of #12: guesses spread over many sources share one budget per name -------------------------


def _source(number: int) -> dict[str, str]:
    """Return the environ of one of many attacking sources (each its own /64)."""
    return {"REMOTE_ADDR": f"2001:db8:{number:x}::1"}


def _spread_guesses(app, name: str, count: int, browser=None) -> list[tuple[int, str]]:
    """Send ``count`` wrong passwords for ``name``, each from a source of its own; return the answers."""
    replies = [
        _login(browser or app.test_client(), name, f"not the password {n}", environ_base=_source(n))
        for n in range(count)
    ]
    return [(r.status_code, r.get_data(as_text=True)) for r in replies]


def _known_browser(app, name: str = "river", password: str = PASSWORD):
    """Return a browser that signed in as ``name`` before (and signed out again)."""
    browser = app.test_client()
    assert _login(browser, name, password, environ_base=OWNER).status_code == 303
    browser.post("/logout", data={"csrf_token": page_csrf_token(browser)})
    assert browser.get("/api/me").get_json()["role"] == "anonymous"
    return browser


def test_guesses_from_many_sources_share_one_budget_per_name(app, monkeypatch):
    make_account(app, "peer", "river")
    checked = _checked_against(app, monkeypatch, "river")
    _spread_guesses(app, "river", 40)

    lucky = _login(app.test_client(), "river", environ_base=_source(41))

    assert lucky.status_code == 401
    assert len(checked) == _first_window(app, "LOGIN_ACCOUNT_FAILURE_LIMIT")  # the right one never among them


def test_the_owner_in_a_browser_she_signed_in_from_is_never_kept_out(app):
    make_account(app, "peer", "river")
    browser = _known_browser(app)
    _spread_guesses(app, "river", 40)

    response = _login(browser, "river", environ_base=_source(99))

    assert response.status_code == 303
    assert browser.get("/api/me").get_json()["username"] == "river"


def test_the_browser_an_invitation_was_accepted_in_counts_as_known(app):
    with app.app_context(), app.extensions["mapsvc.store"].writing() as session:
        code = make_invitation(session, Role.PEER, 7, NOW, None)
    browser = app.test_client()
    form = {"code": code, "username": "river", "password": NEW_PASSWORD, "password_repeat": NEW_PASSWORD}
    assert browser.post("/invite", data=form).status_code == 303
    _spread_guesses(app, "river", 40)

    assert _login(browser, "river", NEW_PASSWORD).status_code == 303


def test_a_spent_budget_does_not_tell_which_names_exist(app, monkeypatch):
    make_account(app, "peer", "river")
    verified: list[int] = []
    original = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify", lambda self, h, p: verified.append(1) or original(self, h, p))

    existing, unknown = _spread_guesses(app, "river", 14), _spread_guesses(app, "nobody-here", 14)

    assert existing == unknown
    assert {status for status, _body in existing} == {401}
    assert verified == [1] * 28  # one argon2 verification each, spent budget or not


def test_a_browser_known_for_one_name_is_unknown_for_another(app):
    make_account(app, "peer", "river")
    make_account(app, "peer", "lake")
    browser = _known_browser(app, "river")
    _spread_guesses(app, "lake", 40)

    assert _login(browser, "lake", environ_base=_source(99)).status_code == 401


def test_a_stolen_device_cookie_is_trusted_for_few_wrong_passwords(app):
    """A seized phone's cookie, copied to many sources, soon counts as no cookie at all."""
    make_account(app, "peer", "river")
    stolen = _known_browser(app).get_cookie(DEVICE_COOKIE, path="/login")
    copies = []
    for _ in range(40):
        copy = app.test_client()
        copy.set_cookie(stolen.key, stolen.value, domain=stolen.domain, path="/login")
        copies.append(copy)
    for number, copy in enumerate(copies[:-1]):
        _login(copy, "river", f"not the password {number}", environ_base=_source(number))

    assert _login(copies[-1], "river", environ_base=_source(99)).status_code == 401


def test_the_device_cookie_names_no_account_and_is_kept_to_the_sign_in_form(app):
    make_account(app, "peer", "river")
    first, second = _known_browser(app), _known_browser(app)
    response = _login(app.test_client(), "river", environ_base=OWNER)
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(DEVICE_COOKIE + "="))
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in header.split(";")[1:]}
    value = header.split(";")[0].split("=", 1)[1]
    days = app.config["DEVICE_COOKIE_DAYS"]

    # 16 random bytes, the day (days since 1970) and 16 bytes of MAC: no name, no id, no finer time.
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}(\d{6})[A-Za-z0-9_-]{22}", value) and "river" not in value
    assert int(value[22:28]) == (NOW.date() - date(1970, 1, 1)).days
    assert value != first.get_cookie(DEVICE_COOKIE, path="/login").value
    assert first.get_cookie(DEVICE_COOKIE, path="/login").value != second.get_cookie(DEVICE_COOKIE, path="/login").value
    assert attributes["path"] == "Path=/login"
    assert attributes["samesite"] == "SameSite=Strict"
    assert {"httponly", "secure"} <= set(attributes)
    # Kept to the midnight (UTC) after the last day the server accepts it: the browser keeps no second.
    last_midnight = datetime.combine(NOW.date() + timedelta(days=days + 1), datetime.min.time(), UTC)
    assert attributes["max-age"] == f"Max-Age={int((last_midnight - NOW).total_seconds())}"


BINDING = bytes(32)  # what an account's password hash and count of "sign out everywhere" give


def test_device_cookies_outlive_a_restart_only_with_a_configured_key(app_config):
    secret = "a device cookie key of at least 32 characters"
    made = {}
    for name, config in [("set", {"DEVICE_COOKIE_SECRET": secret}), ("random", {})]:
        before, after = create_app({**app_config, **config}), create_app({**app_config, **config})
        entry = before.extensions["mapsvc.device_keys"].entry("river", BINDING, 20619)
        made[name] = after.extensions["mapsvc.device_keys"].holds(entry, "river", BINDING, 20619)
        for each in (before, after):
            each.extensions["mapsvc.store"].dispose()

    assert made == {"set": True, "random": False}


def test_confirmations_count_per_account_over_every_source(app, clock):
    """A phone left signed in gets few guesses at /account/confirm, from however many addresses."""
    client, csrf = _stale_admin(app, clock)
    for number in range(10):
        client.post(
            "/account/confirm", data={"password": "not the password", "csrf_token": csrf}, environ_base=_source(number)
        )

    right = client.post("/account/confirm", data={"password": PASSWORD, "csrf_token": csrf}, environ_base=_source(99))
    made = client.post("/account/tokens", data={"name": "bot", "role": "admin", "csrf_token": csrf})

    assert right.status_code == 422 and "sign out and sign in again" in right.get_data(as_text=True)
    assert made.headers["Location"].startswith("/account/confirm")
    assert _sql(app, "SELECT count(*) FROM api_tokens") == [(0,)]


def test_after_spent_confirmations_the_owner_signs_in_again_and_makes_the_change(app, clock):
    client, csrf = _stale_admin(app, clock)
    for _ in range(10):
        client.post("/account/confirm", data={"password": "not the password", "csrf_token": csrf})
    client.post("/logout", data={"csrf_token": csrf})

    assert _login(client, "boss").status_code == 303
    made = client.post("/account/tokens", data={"name": "bot", "role": "admin", "csrf_token": page_csrf_token(client)})

    assert made.status_code == 201


# --- review of #12: codes checked in parallel are each counted, and accepted once ---------------------

CODE_BROWSERS = 8


def _half_signed_in(app, count: int = CODE_BROWSERS) -> list[tuple[Any, str]]:
    """Return ``count`` browsers past the password of ``river``, each with its code step's CSRF token."""
    browsers = []
    for _ in range(count):
        browser = app.test_client()
        assert _login(browser, "river").headers["Location"].startswith("/login/totp")
        browsers.append((browser, page_csrf_token(browser, "/login/totp")))
    return browsers


@pytest.fixture
def slow_codes(monkeypatch):
    """Make each code check take a while, as a loaded server's does: parallel checks overlap."""
    original = totp_module.totp_step

    def slow(*args: Any) -> int | None:
        time.sleep(0.05)
        return original(*args)

    monkeypatch.setattr(totp_module, "totp_step", slow)


def test_wrong_codes_sent_together_are_all_counted(app, clock, slow_codes):
    secret = _with_totp(app, clock)
    browsers = _half_signed_in(app)

    _at_once(
        lambda n: browsers[n][0].post("/login/totp", data={"code": NOT_A_CODE, "csrf_token": browsers[n][1]}),
        CODE_BROWSERS,
    )
    counted = _sql(app, "SELECT totp_failures FROM accounts WHERE username = 'river'")
    owner = app.test_client()
    _login(owner, "river")
    right = _code_step(owner, pyotp.TOTP(secret).at(clock.now))

    assert counted == [(app.config["TOTP_MAX_FAILURES"],)]  # then the codes wait, and are no longer checked
    assert right.status_code == 429


def test_a_code_sent_from_several_browsers_at_once_signs_in_one(app, clock, slow_codes):
    code = pyotp.TOTP(_with_totp(app, clock)).at(clock.now)
    browsers = _half_signed_in(app)

    statuses = _at_once(
        lambda n: browsers[n][0].post("/login/totp", data={"code": code, "csrf_token": browsers[n][1]}), CODE_BROWSERS
    )

    assert statuses.count(303) == 1
    assert set(statuses) == {303, 401, 429}  # a used code counts as a wrong one: past five, codes wait
    assert [b.get("/api/me").get_json()["role"] for b, _csrf in browsers].count("moderator") == 1


# --- review of #12: the database keeps no second of a sign-in, a confirmation or a wrong code ---------


def _stored_times(app) -> dict[str, list[datetime]]:
    """Return the times the database holds of sessions, waits and invitations."""
    with app.extensions["mapsvc.store"].reader() as session:
        sessions = session.execute(select(LoginSession.expires_at, LoginSession.fresh_until)).all()
        return {
            "session ends": [row.expires_at for row in sessions],
            "fresh until": [row.fresh_until for row in sessions if row.fresh_until is not None],
            "codes wait until": [t for t in session.scalars(select(Account.totp_wait_until)) if t is not None],
            "invitation ends": list(session.scalars(select(Invitation.expires_at))),
        }


def test_the_database_keeps_no_second_of_a_sign_in_a_confirmation_or_a_wrong_code(app, clock):
    clock.now += timedelta(seconds=17, microseconds=250_000)
    _with_totp(app, clock)
    phone = app.test_client()
    _login(phone, "river")
    for _ in range(app.config["TOTP_MAX_FAILURES"]):
        _code_step(phone, NOT_A_CODE)
    admin = app.test_client()
    csrf = sign_in(admin, app, "admin", "boss")
    clock.now += timedelta(minutes=app.config["REAUTH_MINUTES"], seconds=3)
    confirmed = admin.post("/account/confirm", data={"password": PASSWORD, "csrf_token": csrf})
    invited = admin.post("/admin/invitations", data={"role": "peer", "days": "3", "csrf_token": csrf})

    times = _stored_times(app)

    assert confirmed.status_code == 303 and invited.status_code == 201
    assert all(times.values()), times
    assert {t.second + t.microsecond for moments in times.values() for t in moments} == {0}
    assert {t.minute for t in times["invitation ends"]} == {0}  # as its created_hour


# --- second review of #12: device entries expire, die with the password, and do not multiply ----------


def _spend_the_names_budget(app, name: str = "river") -> None:
    """Spend the name's shared budget (browsers without a valid entry) with guesses from many sources."""
    _spread_guesses(app, name, 4 * _first_window(app, "LOGIN_ACCOUNT_FAILURE_LIMIT"))


@pytest.mark.parametrize(("days_later", "status"), [(0, 303), (90, 303), (91, 401), (400, 401)])
def test_an_entry_older_than_device_cookie_days_is_refused_by_the_server(app, clock, days_later, status):
    """The browser may keep the cookie (or someone a copy of it); the server counts its issue day."""
    make_account(app, "peer", "river")
    browser = _known_browser(app)
    clock.now += timedelta(days=days_later)
    _spend_the_names_budget(app)

    assert app.config["DEVICE_COOKIE_DAYS"] == 90
    assert _login(browser, "river", environ_base=_source(999)).status_code == status


def _change_password(app, username: str = "river") -> None:
    """Change the account's password to NEW_PASSWORD from a browser of the owner's."""
    owner = app.test_client()
    assert _login(owner, username, environ_base=OWNER).status_code == 303
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_repeat": NEW_PASSWORD}
    changed = owner.post("/account/password", data={**form, "csrf_token": page_csrf_token(owner)})
    assert changed.status_code == 303, changed.get_data(as_text=True)


def _sign_out_everywhere(app, username: str = "river") -> None:
    owner = app.test_client()
    assert _login(owner, username, environ_base=OWNER).status_code == 303
    done = owner.post("/account/logout-everywhere", data={"csrf_token": page_csrf_token(owner)})
    assert done.status_code == 303


@pytest.mark.parametrize(
    ("owner_acts", "password"), [(_change_password, NEW_PASSWORD), (_sign_out_everywhere, PASSWORD)]
)
def test_entries_made_before_a_new_password_or_signing_out_everywhere_count_for_nothing(app, owner_acts, password):
    """A phished password used to stock up entries (or a seized phone's) gives no guesses at the new one."""
    make_account(app, "peer", "river")
    stock = [_known_browser(app) for _ in range(3)]  # the thief's, signed in with the phished password
    owner_acts(app)
    _spend_the_names_budget(app)

    answers = [_login(browser, "river", password, environ_base=_source(900 + n)) for n, browser in enumerate(stock)]

    assert [a.status_code for a in answers] == [401] * len(stock)


def test_the_owners_new_entry_after_a_new_password_counts(app):
    make_account(app, "peer", "river")
    _change_password(app)
    browser = _known_browser(app, "river", NEW_PASSWORD)
    _spend_the_names_budget(app)

    assert _login(browser, "river", NEW_PASSWORD, environ_base=_source(999)).status_code == 303


def test_stocked_up_entries_share_one_budget_per_name(app, monkeypatch):
    """However many entries someone holds, together they get LOGIN_KNOWN_DEVICE_FAILURE_LIMIT (3x the name's)."""
    make_account(app, "peer", "river")
    per_entry, per_name = _first_window(app, "LOGIN_FAILURE_LIMIT"), _first_window(app, "LOGIN_ACCOUNT_FAILURE_LIMIT")
    stock = [_known_browser(app) for _ in range(12)]
    checked = _checked_against(app, monkeypatch, "river")
    for n, browser in enumerate(stock):
        for guess in range(per_entry):
            _login(browser, "river", f"not the password {guess}", environ_base=_source(100 * n + guess))

    assert 12 * per_entry > 4 * per_name  # without the shared budget, each entry would get its own
    assert len(checked) == 3 * per_name + per_name  # the entries' together, then the name's own


@pytest.fixture
def no_budget_per_source(app_config):
    """An app with LOGIN_FAILURE_LIMIT (per source, and per device-cookie entry) off."""
    app = create_app({**app_config, "LOGIN_FAILURE_LIMIT": ""})
    yield app
    app.extensions["mapsvc.store"].dispose()


def test_with_no_budget_per_entry_a_cookie_holder_gets_the_names_budget_not_unlimited_guesses(
    no_budget_per_source, monkeypatch
):
    app = no_budget_per_source
    make_account(app, "peer", "river")
    stolen = _known_browser(app)
    checked = _checked_against(app, monkeypatch, "river")

    _spread_guesses(app, "river", 40, browser=stolen)

    assert len(checked) == _first_window(app, "LOGIN_ACCOUNT_FAILURE_LIMIT")


# --- second review of #12: a seized phone's device cookie ---------------------------------------------


def test_the_device_cookies_name_says_nothing_of_the_service(app):
    make_account(app, "peer", "river")
    names = [c.key for c in _known_browser(app)._cookies.values() if c.path == "/login"]

    assert names == [DEVICE_COOKIE] and DEVICE_COOKIE.startswith("__Secure-")
    assert not re.search("mapsvc|device|staff|login|account", DEVICE_COOKIE, re.IGNORECASE)


@pytest.mark.parametrize(("forget", "kept"), [({"forget_browser": "1"}, False), ({}, True)])
def test_signing_out_with_forget_this_browser_deletes_the_device_cookie(app, forget, kept):
    make_account(app, "peer", "river")
    browser = app.test_client()
    _login(browser, "river", environ_base=OWNER)
    page = browser.get("/account").get_data(as_text=True)

    browser.post("/logout", data={"csrf_token": page_csrf_token(browser), **forget})

    assert 'name="forget_browser"' in page and "Forget this browser" in page
    assert browser.get("/api/me").get_json()["role"] == "anonymous"
    assert (browser.get_cookie(DEVICE_COOKIE, path="/login") is not None) is kept


def test_another_sites_form_cannot_make_the_browser_forget_itself(app):
    """Signed out, no CSRF token guards /logout: a cross-site post with the box ticked is refused."""
    make_account(app, "peer", "river")
    browser = _known_browser(app)

    response = browser.post("/logout", data={"forget_browser": "1"}, headers={"Origin": "https://evil.example"})

    assert response.status_code == 403
    assert browser.get_cookie(DEVICE_COOKIE, path="/login") is not None


@pytest.mark.parametrize(
    ("headers", "status", "kept"), [({}, 204, False), ({"Sec-Fetch-Site": "cross-site"}, 403, True)]
)
def test_the_quick_exits_beacon_deletes_the_device_cookie_from_this_site_only(app, headers, status, kept):
    make_account(app, "peer", "river")
    browser = _known_browser(app)

    response = browser.post("/login/forget", headers=headers)

    assert response.status_code == status
    assert (browser.get_cookie(DEVICE_COOKIE, path="/login") is not None) is kept


# --- second review of #12: a bad DEVICE_COOKIE_DAYS stops the start (it made every right password a 500) ---


@pytest.mark.parametrize("days", [0, -1, 401, 1.5, "90", "90 days", True, None])
def test_a_bad_device_cookie_days_stops_the_start(app_config, days):
    with pytest.raises(ValueError, match="DEVICE_COOKIE_DAYS must be a whole number of days from 1 to 400"):
        create_app({**app_config, "DEVICE_COOKIE_DAYS": days})
