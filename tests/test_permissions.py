"""The permission matrix: every role, signed in or by API token, against every endpoint of the app.

The requests are generated from ``app.url_map``, and what each should get is computed from the
one table in ``mapsvc.web.hooks.permissions``; an endpoint added without an entry fails here.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mapsvc.core.roles import CAPABILITIES, Role
from mapsvc.store.logins import make_token
from mapsvc.store.models import Account
from mapsvc.web.hooks.permissions import PERMISSIONS, PUBLIC, required, unchecked_endpoints
from tests.helpers import make_account, sign_in

ACCOUNT_ROLES = [r for r in Role if r is not Role.ANONYMOUS]
IDENTITIES = (
    ["anonymous"] + [f"signed-in {r.value}" for r in ACCOUNT_ROLES] + [f"token {r.value}" for r in ACCOUNT_ROLES]
)
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
#: Requests that end the session go last, so the others are made signed in.
LAST = {"auth.logout_everywhere": 1, "auth.logout": 2}
#: Path values for the URL rules' arguments: real where the view needs one, harmless elsewhere.
VALUES = {"filename": "css/mapsvc.css", "z": "1", "x": "1", "y": "1"}


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "TILE_URL": ""}


def _requests(app: Flask) -> list[tuple[str, str, str]]:
    """Return (endpoint, method, path) for every rule and method of the app."""
    made = []
    for rule in app.url_map.iter_rules():
        values = {
            name: 999999
            if type(rule._converters.get(name)).__name__ == "IntegerConverter"
            else VALUES.get(name, "nothing")
            for name in rule.arguments
        }
        with app.test_request_context():
            path = app.url_for(rule.endpoint, **values) if rule.arguments else rule.rule
        made += [(rule.endpoint, m, path) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return sorted(made, key=lambda r: (LAST.get(r[0], 0), r))


def _token(app: Flask, role: Role) -> str:
    make_account(app, role, f"{role.value}-owner")
    with app.app_context(), app.extensions["mapsvc.store"].writing() as session:
        owner = session.query(Account).filter_by(username=f"{role.value}-owner").one()
        return make_token(session, owner, "matrix", role, datetime.now(UTC))


def expected(identity: str, endpoint: str, path: str) -> str:
    """Return what the table says: "allowed", "sign in" (401 or a redirect to sign in) or "forbidden"."""
    kind, _, role_name = identity.partition(" ")
    if kind == "token" and not path.startswith("/api/"):
        return "sign in"  # API tokens are for /api/ only
    need = required(endpoint)
    role = Role.ANONYMOUS if kind == "anonymous" else Role(role_name)
    if need is None or need in CAPABILITIES[role]:
        return "allowed"
    return "sign in" if role is Role.ANONYMOUS else "forbidden"


def observed(response: Any) -> str:
    """Return which of the three a response is."""
    location = response.headers.get("Location", "")
    if response.status_code == 401 or (response.status_code == 303 and location.startswith("/login?next=")):
        return "sign in"
    return "forbidden" if response.status_code == 403 else "allowed"


def _client_for(app: Flask, identity: str) -> tuple[FlaskClient, dict[str, str]]:
    client = app.test_client()
    kind, _, role_name = identity.partition(" ")
    if kind == "signed-in":
        return client, {"X-CSRF-Token": sign_in(client, app, role_name)}
    if kind == "token":
        return client, {"Authorization": f"Bearer {_token(app, Role(role_name))}"}
    return client, {}


@pytest.mark.parametrize("identity", IDENTITIES)
def test_every_endpoint_answers_as_the_table_says(app, identity):
    client, headers = _client_for(app, identity)
    outcomes = {}
    for endpoint, method, path in _requests(app):
        body: dict[str, Any] = {"json": {}} if path.startswith("/api/") else {"data": {}}
        response = client.open(path, method=method, headers=headers, **(body if method in UNSAFE else {}))
        outcomes[(endpoint, method)] = (expected(identity, endpoint, path), observed(response), response.status_code)
        response.close()

    wrong = {k: v for k, v in outcomes.items() if v[0] != v[1]}
    assert wrong == {}
    assert len(outcomes) >= len(PERMISSIONS)


@pytest.mark.parametrize("identity", ["anonymous", "signed-in peer"])
def test_refusals_of_the_api_are_json(app, identity):
    client, headers = _client_for(app, identity)

    response = client.get("/admin/audit" if identity == "anonymous" else "/api/moderation/queue", headers=headers)

    if identity == "anonymous":
        assert response.status_code == 303 and response.headers["Location"] == "/login?next=/admin/audit"
    else:
        assert response.status_code == 403 and "error" in response.get_json()


def test_anonymous_api_refusal_is_401_json(app):
    response = app.test_client().get("/api/moderation/queue")

    assert response.status_code == 401
    assert response.get_json()["error"]


def test_every_endpoint_has_a_decision(app):
    assert unchecked_endpoints(app) == set()
    assert set(PERMISSIONS) - {rule.endpoint for rule in app.url_map.iter_rules()} == set()


def test_an_endpoint_without_a_decision_is_refused_and_logged(app, caplog):
    app.add_url_rule("/undecided", "undecided", lambda: "open")
    caplog.set_level(logging.ERROR, logger="mapsvc.web.hooks.permissions")
    client = app.test_client()
    csrf = sign_in(client, app, Role.ADMIN)

    response = client.get("/undecided", headers={"X-CSRF-Token": csrf})

    assert response.status_code == 403
    assert "undecided" in caplog.text and "permission table" in caplog.text
    assert "undecided" in unchecked_endpoints(app)


def test_the_table_names_only_known_capabilities():
    assert all(need == PUBLIC or need in {c.value for c in CAPABILITIES[Role.ADMIN]} for need in PERMISSIONS.values())


#: What each part of the app requires at least: a wrong line in the table fails here too.
FLOORS = {
    "admin.": {"manage_accounts", "read_audit"},
    "moderation.": {"moderate"},
    "moderate.": {"moderate"},
}


@pytest.mark.parametrize("prefix", sorted(FLOORS))
def test_staff_endpoints_need_a_staff_capability(prefix):
    decided = {e: str(n) for e, n in PERMISSIONS.items() if e.startswith(prefix)}

    assert all(need in FLOORS[prefix] for need in decided.values()), decided


def test_own_account_pages_need_an_account():
    own = {"auth.account", "auth.password", "auth.logout_everywhere", "auth.totp_setup", "auth.tokens"}

    assert {PERMISSIONS[e] for e in own} == {"own_account"}


def test_anonymous_reporters_reach_the_map_and_the_report_forms():
    for endpoint in ("pages.index", "pages.report_form", "pages.report_submit", "api.create_report", "api.layers"):
        need = required(endpoint)
        assert need is None or need in CAPABILITIES[Role.ANONYMOUS], endpoint
