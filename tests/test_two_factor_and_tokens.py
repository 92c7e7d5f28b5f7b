"""Two-factor sign-in with TOTP, and API tokens: scope, revocation, storage."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from mapsvc import create_app
from mapsvc.store.models import Account, ApiToken
from mapsvc.store.totp import SecretBox
from tests.conftest import BISHKEK
from tests.helpers import PASSWORD, make_account, page_csrf_token, sign_in


def _account(app, username: str) -> Account:
    with app.extensions["mapsvc.store"].reader() as session:
        return session.scalars(select(Account).where(Account.username == username)).one()


def _opened_secret(app, username: str) -> str:
    """Return the account's TOTP secret as the server opens it (it is stored sealed)."""
    account = _account(app, username)
    box: SecretBox = app.extensions["mapsvc.totp_box"]
    return box.open(account.totp_secret, account.id)


def _secret(page: str) -> str:
    return re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)


def _turn_on(client, csrf: str, clock) -> str:
    """Turn two-factor on from the account page; return the secret."""
    page = client.get("/account/totp").get_data(as_text=True)
    secret = _secret(page)
    assert "otpauth://totp/" in page and "<svg" in page
    code = pyotp.TOTP(secret).at(clock.now)
    response = client.post("/account/totp", data={"secret": secret, "code": code, "csrf_token": csrf})
    assert response.status_code == 303, response.get_data(as_text=True)
    return secret


def _password_step(client, username: str) -> Any:
    return client.post("/login", data={"username": username, "password": PASSWORD})


def _code_step(client, code: str, **form: str) -> Any:
    return client.post("/login/totp", data={"code": code, "csrf_token": page_csrf_token(client, "/login/totp"), **form})


def test_with_two_factor_on_the_password_alone_does_not_sign_in(app, clock):
    client = app.test_client()
    secret = _turn_on(client, sign_in(client, app, "moderator", "river"), clock)
    clock.now += timedelta(minutes=1)
    phone = app.test_client()

    step = _password_step(phone, "river")
    half_way = phone.get("/account")
    wrong = _code_step(phone, "000000" if pyotp.TOTP(secret).at(clock.now) != "000000" else "111111")
    right = _code_step(phone, pyotp.TOTP(secret).at(clock.now))

    assert step.status_code == 303 and step.headers["Location"].startswith("/login/totp")
    assert half_way.status_code == 303 and half_way.headers["Location"].startswith("/login")
    assert wrong.status_code == 401
    assert right.status_code == 303
    assert phone.get("/api/me").get_json()["username"] == "river"


def test_a_code_is_accepted_only_once(app, clock):
    client = app.test_client()
    secret = _turn_on(client, sign_in(client, app, "moderator", "river"), clock)
    clock.now += timedelta(minutes=1)
    code = pyotp.TOTP(secret).at(clock.now)
    first, second = app.test_client(), app.test_client()
    _password_step(first, "river")
    _password_step(second, "river")

    assert _code_step(first, code).status_code == 303
    assert _code_step(second, code).status_code == 401


def test_the_session_token_changes_when_the_second_factor_is_done(app, clock):
    client = app.test_client()
    secret = _turn_on(client, sign_in(client, app, "moderator", "river"), clock)
    clock.now += timedelta(minutes=1)
    phone = app.test_client()
    _password_step(phone, "river")
    half = phone.get_cookie("__Host-mapsvc").value

    _code_step(phone, pyotp.TOTP(secret).at(clock.now))

    assert phone.get_cookie("__Host-mapsvc").value != half
    stale = app.test_client()
    stale.set_cookie("__Host-mapsvc", half)
    assert stale.get("/api/me").get_json()["role"] == "anonymous"


def test_wrong_codes_make_the_codes_wait(app, clock):
    client = app.test_client()
    secret = _turn_on(client, sign_in(client, app, "moderator", "river"), clock)
    clock.now += timedelta(minutes=1)
    phone = app.test_client()
    _password_step(phone, "river")
    wrong = [_code_step(phone, "12345x").status_code for _ in range(app.config["TOTP_MAX_FAILURES"])]

    waiting = _code_step(phone, pyotp.TOTP(secret).at(clock.now))
    clock.now += timedelta(minutes=app.config["TOTP_WAIT_MINUTES"], seconds=1)
    after = _code_step(phone, pyotp.TOTP(secret).at(clock.now))

    assert wrong == [401] * (app.config["TOTP_MAX_FAILURES"] - 1) + [429]
    assert waiting.status_code == 429 and "too many wrong codes" in waiting.get_data(as_text=True)
    assert after.status_code == 303
    assert _account(app, "river").totp_failures == 0


def test_a_wrong_set_up_code_leaves_two_factor_off(app, clock):
    client = app.test_client()
    csrf = sign_in(client, app, "peer", "river")
    secret = _secret(client.get("/account/totp").get_data(as_text=True))

    response = client.post("/account/totp", data={"secret": secret, "code": "999999x", "csrf_token": csrf})

    assert response.status_code == 422
    assert _account(app, "river").totp_secret is None


def test_two_factor_can_be_turned_off_with_a_code(app, clock):
    client = app.test_client()
    csrf = sign_in(client, app, "peer", "river")
    secret = _turn_on(client, csrf, clock)
    clock.now += timedelta(minutes=1)

    response = client.post("/account/totp/disable", data={"code": pyotp.TOTP(secret).at(clock.now), "csrf_token": csrf})

    assert response.status_code == 303
    assert _account(app, "river").totp_secret is None


@pytest.fixture
def strict(app_config):
    app = create_app({**app_config, "REQUIRE_STAFF_TOTP": True})
    yield app
    app.extensions["mapsvc.store"].dispose()


def test_when_staff_must_use_two_factor_it_is_set_up_at_sign_in(strict, clock):
    make_account(strict, "moderator", "river")
    phone = strict.test_client()

    _password_step(phone, "river")
    page = phone.get("/login/totp").get_data(as_text=True)
    secret = _secret(page)
    before = phone.get("/api/me").get_json()["role"]
    done = _code_step(phone, pyotp.TOTP(secret).at(clock.now), secret=secret)

    assert before == "anonymous"
    assert done.status_code == 303
    assert phone.get("/api/me").get_json()["role"] == "moderator"
    assert _opened_secret(strict, "river") == secret


def test_when_staff_must_use_two_factor_peers_need_not(strict):
    client = strict.test_client()
    sign_in(client, strict, "peer", "river")

    assert client.get("/api/me").get_json()["role"] == "peer"


def test_when_staff_must_use_two_factor_they_cannot_turn_it_off(strict, clock):
    make_account(strict, "moderator", "river")
    phone = strict.test_client()
    _password_step(phone, "river")
    secret = _secret(phone.get("/login/totp").get_data(as_text=True))
    _code_step(phone, pyotp.TOTP(secret).at(clock.now), secret=secret)
    clock.now += timedelta(minutes=1)

    response = phone.post(
        "/account/totp/disable", data={"code": pyotp.TOTP(secret).at(clock.now), "csrf_token": page_csrf_token(phone)}
    )

    assert response.status_code == 409
    assert _opened_secret(strict, "river") == secret


# --- API tokens ----------------------------------------------------------------------------------------


def _make_token(client, csrf: str, role: str, name: str = "sms gateway") -> Any:
    return client.post("/account/tokens", data={"name": name, "role": role, "csrf_token": csrf})


def _token_of(response) -> str:
    return re.search(r'id="new-token">([^<]+)<', response.get_data(as_text=True)).group(1)


@pytest.mark.parametrize("role", ["peer", "moderator"])
def test_a_token_acts_with_its_role_without_a_cookie_or_csrf_token(app, role):
    owner = app.test_client()
    token = _token_of(_make_token(owner, sign_in(owner, app, "moderator", "river"), role))
    bearer = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    report = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]}

    me = client.get("/api/me", headers=bearer).get_json()
    queue = client.get("/api/moderation/queue", headers=bearer)
    posted = client.post("/api/reports", json=report, headers=bearer)

    assert me == {"role": role, "username": "river", "by_token": True, "capabilities": me["capabilities"]}
    assert queue.status_code == (200 if role == "moderator" else 403)
    assert posted.status_code == 201
    assert "Set-Cookie" not in posted.headers


def test_a_token_cannot_outrank_its_owner(app):
    owner = app.test_client()
    response = _make_token(owner, sign_in(owner, app, "peer", "river"), "moderator")

    assert response.status_code == 422
    with app.extensions["mapsvc.store"].reader() as session:
        assert session.scalars(select(ApiToken)).all() == []


def test_a_token_is_stored_only_as_a_hash(app, migrated_template):
    owner = app.test_client()
    token = _token_of(_make_token(owner, sign_in(owner, app, "admin"), "advocate"))

    assert token not in migrated_template.dump(app.config["DATABASE_URL"])


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_a_revoked_token_no_longer_signs_in(app, who):
    owner = app.test_client()
    csrf = sign_in(owner, app, "planner", "river")
    token = _token_of(_make_token(owner, csrf, "planner"))
    bearer = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/me", headers=bearer).status_code == 200
    if who == "owner":
        page = owner.get("/account/tokens").get_data(as_text=True)
        path = re.search(r'action="(/account/tokens/\d+/revoke)"', page).group(1)
        owner.post(path, data={"csrf_token": csrf})
    else:
        admin = app.test_client()
        admin_csrf = sign_in(admin, app, "admin")
        path = re.search(r'action="(/admin/tokens/\d+/revoke)"', admin.get("/admin/tokens").get_data(as_text=True))
        admin.post(path.group(1), data={"csrf_token": admin_csrf})

    response = app.test_client().get("/api/me", headers=bearer)

    assert response.status_code == 401 and response.get_json()["field"] == "Authorization"


@pytest.mark.parametrize("change", ["demote", "disable"])
def test_demoting_or_disabling_the_owner_ends_their_tokens(app, change):
    owner = app.test_client()
    token = _token_of(_make_token(owner, sign_in(owner, app, "moderator", "river"), "peer"))
    admin = app.test_client()
    csrf = sign_in(admin, app, "admin")
    account_id = _account(app, "river").id
    path = f"/admin/accounts/{account_id}/" + ("role" if change == "demote" else "disable")

    admin.post(path, data={"role": "peer", "csrf_token": csrf})

    assert app.test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert owner.get("/account").status_code == 303


@pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Bearer mapsvc_not-a-token"])
def test_a_bad_authorization_header_is_401_naming_it(client, header):
    response = client.get("/api/layers", headers={"Authorization": header})

    assert response.status_code == 401
    assert response.get_json()["field"] == "Authorization"


def test_a_token_is_refused_outside_the_api(app):
    owner = app.test_client()
    token = _token_of(_make_token(owner, sign_in(owner, app, "admin"), "admin"))

    response = app.test_client().get("/admin/accounts", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
