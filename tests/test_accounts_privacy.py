"""After mixed traffic (reports, sign-ins, failures, throttling, tokens), what a seized database
or log holds: no address, no user agent, no address hash or limiter key, no secret of anyone's."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask

from mapsvc.web.hooks.limits import client_key
from tests.conftest import BISHKEK
from tests.helpers import PASSWORD, build_app, make_account
from tests.test_privacy_dump import _everything_logged

ADDRESSES = ["203.0.113.77", "2001:db8::5:77"]
FORWARDED = "198.51.100.23"
USER_AGENT = "Mozilla/5.0 (Linux; Android 9; mapsvc-privacy-probe K7Q) Chrome/120.0 Mobile Safari/537.36"
NEW_PASSWORD = "a quite long pass phrase 7"


@dataclass(frozen=True)
class Traffic:
    """The traces of one run, and the secrets and keys that must not appear in them."""

    dump: str
    logs: str
    secrets: list[str]
    statuses: list[int]
    keys: list[str]


def _as(address: str) -> dict:
    return {
        "headers": {"User-Agent": USER_AGENT, "X-Forwarded-For": FORWARDED},
        "environ_base": {"REMOTE_ADDR": address},
    }


def _run(app: Flask, address: str) -> tuple[list[str], list[int]]:
    """Send one address's share of the traffic; return the secrets handed out and the statuses."""
    client, opts = app.test_client(), _as(address)
    statuses, found = [], []
    report = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]}
    statuses.append(client.post("/api/reports", json=report, **opts).status_code)
    statuses.append(client.post("/report", data={k: str(v) for k, v in report.items()}, **opts).status_code)
    admin = app.test_client()
    statuses.append(admin.post("/login", data={"username": "boss", "password": PASSWORD}, **opts).status_code)
    found.append(admin.get_cookie("__Host-mapsvc").value)
    csrf = re.search(r'name="csrf-token" content="(\w+)"', admin.get("/report", **opts).get_data(as_text=True)).group(1)
    made = admin.post("/admin/invitations", data={"role": "moderator", "days": "3", "csrf_token": csrf}, **opts)
    code = re.search(r'id="invitation-code">([^<]+)<', made.get_data(as_text=True)).group(1)
    found.append(code)
    username = f"river{len(address)}"
    form = {"code": code, "username": username, "password": NEW_PASSWORD, "password_repeat": NEW_PASSWORD}
    statuses.append(client.post("/invite", data=form, **opts).status_code)
    statuses.append(
        client.post("/login", data={"username": username, "password": "wrong guess here"}, **opts).status_code
    )
    statuses.append(client.post("/login", data={"username": username, "password": NEW_PASSWORD}, **opts).status_code)
    csrf = re.search(r'name="csrf-token" content="(\w+)"', client.get("/report", **opts).get_data(as_text=True)).group(
        1
    )
    made = client.post("/account/tokens", data={"name": "bot", "role": "moderator", "csrf_token": csrf}, **opts)
    token = re.search(r'id="new-token">([^<]+)<', made.get_data(as_text=True)).group(1)
    found.append(token)
    statuses.append(client.get("/api/moderation/queue", headers={"Authorization": f"Bearer {token}"}).status_code)
    for _ in range(4):  # past the sign-in limit: Flask-Limiter logs the breach
        statuses.append(app.test_client().post("/login", data={"username": "x", "password": "y"}, **opts).status_code)
    statuses.append(client.post("/logout", data={"csrf_token": csrf}, **opts).status_code)
    return found, statuses


@pytest.fixture(scope="module")
def traffic(tmp_path_factory, migrated_template) -> Iterator[Traffic]:
    app = build_app(
        tmp_path_factory.mktemp("accounts-dump"),
        migrated_template,
        seed=5,
        RATELIMIT_ENABLED=True,
        LOGIN_RATE_LIMIT="5 per minute",
    )
    make_account(app, "admin", "boss")
    secrets, statuses = [PASSWORD, NEW_PASSWORD], []
    with _everything_logged() as capture:
        for address in ADDRESSES:
            found, sent = _run(app, address)
            secrets += found
            statuses += sent
    keys = []
    for address in ADDRESSES:
        with app.test_request_context(environ_base={"REMOTE_ADDR": address}):
            keys.append(client_key())
    dump = migrated_template.dump(app.config["DATABASE_URL"])
    yield Traffic(dump, "\n".join(capture.lines), secrets, statuses, keys)
    app.extensions["mapsvc.store"].dispose()


def test_the_traffic_did_what_it_should(traffic):
    assert 429 in traffic.statuses and 401 in traffic.statuses and 200 in traffic.statuses
    assert "INSERT INTO accounts" in traffic.logs and "ratelimit" in traffic.logs


TRACES = ["dump", "logs"]


@pytest.mark.parametrize("trace", TRACES)
@pytest.mark.parametrize("text", [*ADDRESSES, FORWARDED, USER_AGENT, "mapsvc-privacy-probe"])
def test_no_address_or_user_agent(traffic, trace, text):
    assert text not in getattr(traffic, trace)


@pytest.mark.parametrize("trace", TRACES)
@pytest.mark.parametrize("algorithm", ["sha256", "sha1", "md5"])
def test_no_raw_hash_of_an_address(traffic, trace, algorithm):
    digests = [hashlib.new(algorithm, a.encode()).hexdigest() for a in ADDRESSES]

    assert not any(d[:16] in getattr(traffic, trace) for d in digests)


@pytest.mark.parametrize("trace", TRACES)
def test_no_limiter_key(traffic, trace):
    assert not any(key[:16] in getattr(traffic, trace) for key in traffic.keys)


@pytest.mark.parametrize("trace", TRACES)
def test_no_password_code_token_or_cookie(traffic, trace):
    assert [s for s in traffic.secrets if s in getattr(traffic, trace)] == []
