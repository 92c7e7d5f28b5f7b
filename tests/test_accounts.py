"""Accounts through the web: invitations, passwords, slowed-down guessing, throttling, sessions, CSRF, roles."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from mapsvc import create_app
from mapsvc.store.models import Account, AuditEntry, LoginSession
from mapsvc.web.hooks import windows
from tests.conftest import BISHKEK
from tests.helpers import PASSWORD, make_account, page_csrf_token, sign_in

NEW_PASSWORD = "a quite long pass phrase 7"


def _rows(app, model) -> list[Any]:
    with app.extensions["mapsvc.store"].reader() as session:
        return list(session.scalars(select(model)))


def _invite(client, csrf: str, role: str = "peer", days: int = 7) -> str:
    response = client.post("/admin/invitations", data={"role": role, "days": str(days), "csrf_token": csrf})
    assert response.status_code == 201
    return re.search(r'id="invitation-code">([^<]+)<', response.get_data(as_text=True)).group(1)


def _accept(client, code: str, username: str = "river", password: str = NEW_PASSWORD, repeat: str | None = None):
    form = {"code": code, "username": username, "password": password, "password_repeat": repeat or password}
    return client.post("/invite", data=form)


def _login(client, username: str, password: str = PASSWORD, **kwargs: Any):
    return client.post("/login", data={"username": username, "password": password}, **kwargs)


@pytest.fixture
def admin(app):
    """Return a signed-in admin's client and CSRF token."""
    client = app.test_client()
    return client, sign_in(client, app, "admin")


# --- invitations ---------------------------------------------------------------------------------


def test_an_invitation_makes_one_account_of_its_role(app, admin):
    code = _invite(*admin, role="moderator")
    visitor = app.test_client()

    first = _accept(visitor, code)
    second = _accept(app.test_client(), code, username="lake")

    assert first.status_code == 303 and first.headers["Location"] == "/login?welcome=1"
    assert second.status_code == 404 and "invitation" in second.get_data(as_text=True)
    assert {(a.username, a.role) for a in _rows(app, Account)} == {("admin-1", "admin"), ("river", "moderator")}
    assert _login(visitor, "river", NEW_PASSWORD).status_code == 303


def test_an_invitation_link_shows_the_form_with_its_code(app, admin):
    code = _invite(*admin)

    page = app.test_client().get(f"/invite/{code}").get_data(as_text=True)

    assert f'name="code" value="{code}"' in page


def test_an_expired_invitation_is_refused(app, admin, clock):
    code = _invite(*admin, days=2)
    clock.now += timedelta(days=2, hours=1)  # its end is kept rounded up to the hour

    assert _accept(app.test_client(), code).status_code == 404
    assert len(_rows(app, Account)) == 1


def test_a_withdrawn_invitation_is_refused(app, admin):
    client, csrf = admin
    code = _invite(client, csrf)
    invitation_id = re.search(
        r"/admin/invitations/(\d+)/revoke", client.get("/admin/invitations").get_data(as_text=True)
    )

    client.post(f"/admin/invitations/{invitation_id.group(1)}/revoke", data={"csrf_token": csrf})

    assert _accept(app.test_client(), code).status_code == 404


def test_the_invitation_code_is_stored_only_as_a_hash(app, admin, migrated_template):
    code = _invite(*admin)

    dump = migrated_template.dump(app.config["DATABASE_URL"])

    assert code not in dump


@pytest.mark.parametrize(
    ("username", "password", "repeat", "field"),
    [
        ("ab", NEW_PASSWORD, None, "username"),
        ("has space", NEW_PASSWORD, None, "username"),
        ("-dash", NEW_PASSWORD, None, "username"),
        ("river", "short pw", None, "password"),
        ("river", "abababababababab", None, "password"),
        ("river", "river's long password", None, "password"),
        ("river", NEW_PASSWORD, NEW_PASSWORD + "x", "password_repeat"),
    ],
)
def test_bad_usernames_and_passwords_are_refused_naming_the_field(app, admin, username, password, repeat, field):
    code = _invite(*admin)

    response = _accept(app.test_client(), code, username, password, repeat)

    assert response.status_code == 422
    assert 'class="error"' in response.get_data(as_text=True)
    assert len(_rows(app, Account)) == 1  # nothing half-written
    assert _accept(app.test_client(), code).status_code == 303  # the invitation is still unused


def test_a_taken_username_is_refused_case_insensitively(app, admin):
    code = _invite(*admin)

    assert _accept(app.test_client(), code, username="ADMIN-1").status_code == 409


# --- passwords and guessing ---------------------------------------------------------------------------


def test_the_password_is_stored_as_argon2id_only(app, migrated_template):
    make_account(app, "peer", "river")

    (account,) = _rows(app, Account)
    dump = migrated_template.dump(app.config["DATABASE_URL"])

    assert account.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(account.password_hash, PASSWORD)
    assert PASSWORD not in dump


def test_a_hash_made_with_old_parameters_is_renewed_at_sign_in(app, app_config):
    make_account(app, "peer", "river")  # with the tests' cheap parameters
    app2 = create_app({**app_config, "ARGON2_PROFILE": "RFC_9106_LOW_MEMORY"})
    before = _rows(app2, Account)[0].password_hash

    assert _login(app2.test_client(), "river").status_code == 303
    after = _rows(app2, Account)[0].password_hash
    app2.extensions["mapsvc.store"].dispose()

    assert "m=65536,t=3,p=4" in after and after != before


def test_a_wrong_password_and_an_unknown_name_look_the_same(app, monkeypatch):
    make_account(app, "peer", "river")
    verified = []
    original = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify", lambda self, h, p: verified.append(1) or original(self, h, p))

    wrong = _login(app.test_client(), "river", "not the password at all")
    unknown = _login(app.test_client(), "nobody-here", "not the password at all")

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_data(as_text=True) == unknown.get_data(as_text=True)
    assert verified == [1, 1]  # one argon2 verification each: the same work, the same time


def test_too_many_wrong_passwords_slow_down_their_source_not_the_account(app, monkeypatch):
    """Wrong passwords wait per address and username (LOGIN_FAILURE_LIMIT); nobody else is locked out."""
    make_account(app, "peer", "river")
    guesser, owner = {"REMOTE_ADDR": "203.0.113.9"}, {"REMOTE_ADDR": "198.51.100.4"}
    for _ in range(5):  # the first window: 5 per quarter hour
        assert _login(app.test_client(), "river", "wrong password guess", environ_base=guesser).status_code == 401

    held = _login(app.test_client(), "river", environ_base=guesser)
    elsewhere = _login(app.test_client(), "river", environ_base=owner)
    monkeypatch.setattr(windows.time, "now", windows.time.now + 15 * 60)
    later = _login(app.test_client(), "river", environ_base=guesser)

    assert held.status_code == 401
    assert elsewhere.status_code == 303
    assert later.status_code == 303


def test_a_disabled_account_cannot_sign_in(app, admin):
    client, csrf = admin
    account_id = make_account(app, "peer", "river")

    client.post(f"/admin/accounts/{account_id}/disable", data={"csrf_token": csrf})

    assert _login(app.test_client(), "river").status_code == 401


# --- throttling --------------------------------------------------------------------------------------


@pytest.fixture
def limited(app_config):
    return {
        **app_config,
        "RATELIMIT_ENABLED": True,
        "LOGIN_RATE_LIMIT": "3 per minute",
        "INTAKE_RATE_LIMIT": "2 per hour",
    }


def test_sign_in_attempts_are_throttled_per_address(limited):
    app = create_app(limited)
    client = app.test_client()
    one = {"REMOTE_ADDR": "203.0.113.5"}
    statuses = [_login(client, "nobody-here", "a wrong password", environ_base=one).status_code for _ in range(4)]
    other = _login(client, "nobody-here", "a wrong password", environ_base={"REMOTE_ADDR": "203.0.113.6"})
    throttled = _login(client, "nobody-here", "a wrong password", environ_base=one)
    app.extensions["mapsvc.store"].dispose()

    assert statuses == [401, 401, 401, 429]
    assert other.status_code == 401
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert "too many requests" in throttled.get_data(as_text=True)


def test_intake_is_throttled_across_the_api_and_the_form(limited):
    app = create_app(limited)
    client = app.test_client()
    body = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]}
    api = client.post("/api/reports", json=body)
    form = client.post("/report", data={k: str(v) for k, v in body.items()})
    third = client.post("/api/reports", json=body)
    app.extensions["mapsvc.store"].dispose()

    assert (api.status_code, form.status_code) == (201, 201)
    assert third.status_code == 429 and third.get_json()["error"]


# --- sessions and cookies ----------------------------------------------------------------------------


def test_the_session_cookie_is_secure_httponly_lax_and_host_only(app):
    make_account(app, "peer", "river")

    response = _login(app.test_client(), "river")
    cookie = response.headers["Set-Cookie"]

    assert cookie.startswith("__Host-mapsvc=")
    assert all(part in cookie for part in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"))
    assert "Domain" not in cookie


def test_without_secure_cookies_the_cookie_has_no_host_prefix(app_config):
    app = create_app({**app_config, "SESSION_COOKIE_SECURE": False})
    make_account(app, "peer", "river")
    cookie = _login(app.test_client(), "river").headers["Set-Cookie"]
    app.extensions["mapsvc.store"].dispose()

    assert cookie.startswith("mapsvc_session=") and "Secure" not in cookie


@pytest.mark.parametrize(("method", "path"), [("GET", "/"), ("GET", "/report"), ("GET", "/login"), ("POST", "/report")])
def test_anonymous_visitors_get_no_cookie(client, method, path):
    data = {"category": "checkpoint", "lat": str(BISHKEK[0]), "lon": str(BISHKEK[1])} if method == "POST" else None

    response = client.open(path, method=method, data=data)

    assert response.status_code in (200, 201)
    assert "Set-Cookie" not in response.headers
    assert page_csrf_token(client, path if method == "GET" else "/report") == ""


def test_signing_out_ends_the_session(app):
    client = app.test_client()
    csrf = sign_in(client, app, "peer")
    cookie = client.get_cookie("__Host-mapsvc").value

    response = client.post("/logout", data={"csrf_token": csrf})
    replayed = app.test_client()
    replayed.set_cookie("__Host-mapsvc", cookie)

    assert response.status_code == 303 and "__Host-mapsvc=;" in response.headers["Set-Cookie"]
    assert replayed.get("/account").status_code == 303
    assert _rows(app, LoginSession) == []


def test_signing_out_everywhere_ends_every_session_of_the_account(app):
    phone, laptop = app.test_client(), app.test_client()
    csrf = sign_in(phone, app, "moderator", "river")
    _login(laptop, "river")
    other = app.test_client()
    sign_in(other, app, "peer", "lake")

    response = phone.post("/account/logout-everywhere", data={"csrf_token": csrf})

    assert response.status_code == 303
    assert laptop.get("/account").status_code == 303
    assert phone.get("/account").status_code == 303
    assert other.get("/account").status_code == 200
    assert [(e.actor, e.action) for e in _rows(app, AuditEntry)] == [("river", "logout_everywhere")]


def test_a_session_expires(app, clock):
    client = app.test_client()
    sign_in(client, app, "peer")

    clock.now += timedelta(hours=app.config["LOGIN_SESSION_HOURS"], seconds=1)

    assert client.get("/account").status_code == 303


def test_sign_in_goes_on_to_a_local_next_page_only(app):
    make_account(app, "admin", "boss")

    local = app.test_client().post("/login", data={"username": "boss", "password": PASSWORD, "next": "/admin/audit"})
    remote = app.test_client().post("/login", data={"username": "boss", "password": PASSWORD, "next": "//evil.example"})

    assert local.headers["Location"] == "/admin/audit"
    assert remote.headers["Location"] == "/account"


def test_a_cross_site_sign_in_form_is_refused(app):
    make_account(app, "peer", "river")

    response = _login(app.test_client(), "river", headers={"Sec-Fetch-Site": "cross-site"})
    foreign = _login(app.test_client(), "river", headers={"Origin": "https://evil.example"})

    assert response.status_code == foreign.status_code == 403


# --- CSRF ----------------------------------------------------------------------------------------------


def _password_change(client, **extra: Any):
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_repeat": NEW_PASSWORD}
    return client.post("/account/password", data={**form, **extra.pop("form", {})}, **extra)


def test_a_changed_password_signs_out_every_other_browser(app):
    here, there = app.test_client(), app.test_client()
    token = sign_in(here, app, "moderator", "river")
    there.post("/login", data={"username": "river", "password": PASSWORD})
    assert there.get("/account").status_code == 200

    response = _password_change(here, form={"csrf_token": token})

    assert response.status_code == 303
    assert here.get("/account").status_code == 200
    assert there.get("/account").status_code == 303  # back to the sign-in page
    assert _login(app.test_client(), "river", NEW_PASSWORD).status_code == 303


@pytest.mark.parametrize("sent", ["missing", "wrong", "another session's"])
def test_a_cookie_request_without_its_own_csrf_token_is_refused(app, sent):
    client = app.test_client()
    sign_in(client, app, "peer", "river")
    other = app.test_client()
    others_token = sign_in(other, app, "peer", "lake")
    form = {"missing": {}, "wrong": {"csrf_token": "0" * 64}, "another session's": {"csrf_token": others_token}}[sent]

    response = _password_change(client, form=form)

    assert response.status_code == 403
    assert "CSRF" in response.get_data(as_text=True)
    assert _login(app.test_client(), "river").status_code == 303  # the password did not change


@pytest.mark.parametrize("how", ["form", "header"])
def test_the_sessions_csrf_token_is_accepted(app, how):
    client = app.test_client()
    csrf = sign_in(client, app, "peer", "river")
    extra = {"form": {"csrf_token": csrf}} if how == "form" else {"headers": {"X-CSRF-Token": csrf}}

    response = _password_change(client, **extra)

    assert response.status_code == 303
    assert _login(app.test_client(), "river", NEW_PASSWORD).status_code == 303


def test_api_writes_with_a_session_need_the_csrf_token_too(app):
    client = app.test_client()
    csrf = sign_in(client, app, "peer")
    body = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]}

    refused = client.post("/api/reports", json=body)
    accepted = client.post("/api/reports", json=body, headers={"X-CSRF-Token": csrf})

    assert refused.status_code == 403 and refused.get_json()["field"] == "csrf_token"
    assert accepted.status_code == 201


def test_a_new_session_has_a_new_csrf_token(app):
    client = app.test_client()
    first = sign_in(client, app, "peer", "river")
    client.post("/logout", data={"csrf_token": first})
    _login(client, "river")

    assert page_csrf_token(client) not in ("", first)


# --- roles ---------------------------------------------------------------------------------------------


def test_a_new_role_ends_the_accounts_sessions(app, admin):
    client, csrf = admin
    member = app.test_client()
    sign_in(member, app, "moderator", "river")
    account_id = next(a.id for a in _rows(app, Account) if a.username == "river")

    response = client.post(f"/admin/accounts/{account_id}/role", data={"role": "peer", "csrf_token": csrf})

    assert response.status_code == 303
    assert member.get("/account").status_code == 303
    assert _login(member, "river").status_code == 303
    assert member.get("/api/me").get_json()["role"] == "peer"
    assert ("admin-1", "role_changed", "river: moderator -> peer") in {
        (e.actor, e.action, e.detail) for e in _rows(app, AuditEntry)
    }


@pytest.mark.parametrize("action", ["role", "disable"])
def test_the_last_admin_stays(app, admin, action):
    client, csrf = admin
    (me,) = _rows(app, Account)

    response = client.post(f"/admin/accounts/{me.id}/{action}", data={"role": "peer", "csrf_token": csrf})

    assert response.status_code == 409
    assert _rows(app, Account)[0].role == "admin" and not _rows(app, Account)[0].disabled


def test_the_audit_log_pages_through_older_entries(app, admin):
    client, csrf = admin
    for _ in range(55):
        _invite(client, csrf)

    first = client.get("/admin/audit").get_data(as_text=True)
    older = re.search(r'href="(/admin/audit\?before=\d+)"', first).group(1)
    second = client.get(older).get_data(as_text=True)

    assert first.count("invitation_made") == 50
    assert second.count("invitation_made") == 5
    assert client.get("/admin/audit?before=x").status_code == 422
