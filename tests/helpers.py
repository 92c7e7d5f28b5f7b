"""Helpers shared by the test modules: reading the store, placing reports in known cells."""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h3
import numpy as np
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from mapsvc import create_app
from mapsvc.core.policy import DEFAULT_POLICIES
from mapsvc.core.roles import Role
from mapsvc.services.accounts import account_policy
from mapsvc.store.accounts import create_account
from mapsvc.store.logins import make_token
from mapsvc.store.models import Account, Event, Report
from tests.conftest import BISHKEK, TOTP_KEY, Clock
from tests.databases import PostgisDatabases, SqliteDatabases

#: The atom cell (default heat resolution) that holds BISHKEK.
HOME_CELL = h3.latlng_to_cell(*BISHKEK, 8)


def build_app(directory: Path, databases: SqliteDatabases | PostgisDatabases, seed: int, **config: Any) -> Flask:
    """Return an app on a migrated database of its own, for fixtures wider than one test."""
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": databases.fresh(directory),
            "CLOCK": Clock(),
            "FUZZ_RNG": random.Random(seed),
            "ARGON2_PROFILE": "CHEAPEST",
            "RATELIMIT_ENABLED": False,
            "INTAKE_ANSWER_MS": 0,
            "TOTP_ENCRYPTION_KEY": TOTP_KEY,
            **config,
        }
    )


#: A service area wide enough for places far apart (used with :func:`far_apart_places`).
WIDE_AREA = [70.0, 38.5, 78.0, 44.0]

#: Far-apart places lie on a grid this far apart (metres): no place's draws come near another's
#: (the noise exceeds 5 km with probability below 1e-8 at r = 300 m, 1e-5 at r = 500 m).
PLACE_SPACING_M = 12_000


def far_apart_places(count: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``count`` true places (lat, lon) in :data:`WIDE_AREA`, each alone within its spacing."""
    side = math.ceil(math.sqrt(count))
    rows, cols = np.divmod(np.arange(count), side)
    if rows.max() * PLACE_SPACING_M / 111_000 > 4.5:
        raise ValueError("too many places for the wide area")
    lat = 39.0 + rows * PLACE_SPACING_M / 111_000 + rng.uniform(0, 0.01, count)
    lon = 70.5 + cols * PLACE_SPACING_M / (111_000 * math.cos(math.radians(43.5))) + rng.uniform(0, 0.01, count)
    return np.column_stack([lat, lon])


def iso(moment: datetime) -> str:
    """Return the API's timestamp form of an aware datetime."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Parse the API's timestamp form."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def stored_counts(app: Flask) -> tuple[int, int]:
    """Return how many events and reports the store holds."""
    with app.extensions["mapsvc.store"].reader() as session:
        events = session.scalar(select(func.count()).select_from(Event))
        reports = session.scalar(select(func.count()).select_from(Report))
    return int(events or 0), int(reports or 0)


def stored_events(app: Flask) -> list[Event]:
    """Return every stored event, detached from its session."""
    with app.extensions["mapsvc.store"].reader() as session:
        return list(session.scalars(select(Event).order_by(Event.id)).all())


def event_by_public_id(app: Flask, public_id: str) -> Event:
    """Return the stored event with a public id."""
    with app.extensions["mapsvc.store"].reader() as session:
        return session.scalars(select(Event).where(Event.public_id == public_id)).one()


def event_of_report(app: Flask, report_id: str) -> str:
    """Return the public id of the event a stored report joined (the reporter is never told)."""
    with app.extensions["mapsvc.store"].reader() as session:
        return session.scalars(
            select(Event.public_id).join(Report, Report.event_id == Event.id).where(Report.public_id == report_id)
        ).one()


def reported_event(app: Flask, response: TestResponse) -> Event:
    """Return the stored event that the report answered by ``response`` joined."""
    return event_by_public_id(app, event_of_report(app, response.get_json()["id"]))


def cell_centre(cell: str) -> tuple[float, float]:
    """Return the centre of an H3 cell rounded as published points are (4 decimals)."""
    lat, lon = h3.cell_to_latlng(cell)
    return round(lat, 4), round(lon, 4)


def sibling_cells(cell: str, count: int) -> list[str]:
    """Return ``count`` other cells with the same parent one resolution coarser."""
    parent = h3.cell_to_parent(cell, h3.get_resolution(cell) - 1)
    return sorted(c for c in h3.cell_to_children(parent, h3.get_resolution(cell)) if c != cell)[:count]


def post_device(
    client: FlaskClient,
    point: tuple[float, float],
    category: str = "checkpoint",
    occurred_at: datetime | None = None,
    **fields: Any,
) -> TestResponse:
    """Post a report fuzzed on the device, so it is stored at ``point`` (rounded).

    The response's ``event_id`` names the event the report joined, read from the store.
    """
    body: dict[str, Any] = {"category": category, "lat": point[0], "lon": point[1], "fuzzed_on_device": True}
    if occurred_at is not None:
        body["occurred_at"] = iso(occurred_at)
    body.update(fields)
    response = client.post("/api/reports", json=body)
    assert response.status_code == 201, response.get_json()
    response.event_id = event_of_report(client.application, response.get_json()["id"])  # type: ignore[attr-defined]
    return response


def bucket_of(moment: datetime, category: str) -> datetime:
    """Return the start of the category's time bucket holding ``moment`` (UTC)."""
    bucket = DEFAULT_POLICIES[category].bucket_s
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % bucket, tz=UTC)


def decay(now: datetime, bucket_start: datetime, category: str) -> float:
    """Return privacy.md §6's weight 2^(-(now - t_event)/h) of an event of ``category``."""
    age = (now - bucket_start) / timedelta(seconds=1)
    return float(2.0 ** (-age / DEFAULT_POLICIES[category].half_life_s))


def read_stale_s_later(app: Flask) -> None:
    """Move the read cache's clock READ_STALE_S seconds on: no answer kept before is served again.

    Answers to map reads are served READ_STALE_S seconds, whatever is written meanwhile
    (mapsvc.web.readcache): a test that reads, writes and reads again to compare waits this long.
    """
    cache = app.extensions["mapsvc.read_cache"]
    if cache is not None:
        clock, step = cache.clock, cache.stale_s
        cache.clock = lambda: clock() + step


def heat_cells(client: FlaskClient, **params: Any) -> dict[str, dict[str, Any]]:
    """Return /api/heat's features as {cell: properties}."""
    response = client.get("/api/heat", query_string=params)
    assert response.status_code == 200, response.get_json()
    return {f["id"]: f["properties"] for f in response.get_json()["features"]}


def layer_ids(client: FlaskClient, **params: Any) -> list[str]:
    """Return the event ids /api/layers shows."""
    response = client.get("/api/layers", query_string=params)
    assert response.status_code == 200, response.get_json()
    return [f["id"] for f in response.get_json()["features"]]


#: The password of every account that ``make_account`` and ``sign_in`` create.
PASSWORD = "correct horse battery staple"
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


def make_account(app: Flask, role: Role | str, username: str | None = None, password: str = PASSWORD) -> int:
    """Create an account of ``role`` directly in the store; return its id."""
    role = Role(role)
    with app.app_context(), app.extensions["mapsvc.store"].writing() as session:
        account = create_account(
            session, username or f"{role.value}-1", password, role, datetime.now(UTC), account_policy()
        )
        return account.id


def make_api_token(app: Flask, role: Role | str, username: str | None = None) -> str:
    """Create an account of ``role`` and an API token of the same role for it; return the token."""
    role = Role(role)
    username = username or f"{role.value}-token-owner"
    make_account(app, role, username)
    with app.app_context(), app.extensions["mapsvc.store"].writing() as session:
        owner = session.scalars(select(Account).where(Account.username == username)).one()
        return make_token(session, owner, "tests", role, datetime.now(UTC))


def page_csrf_token(client: FlaskClient, path: str = "/report") -> str:
    """Return the CSRF token a page offers its scripts (empty when not signed in)."""
    match = _CSRF_META.search(client.get(path).get_data(as_text=True))
    assert match is not None, "the page has no csrf-token meta element"
    return match.group(1)


def sign_in(client: FlaskClient, app: Flask, role: Role | str, username: str | None = None) -> str:
    """Create an account of ``role`` and sign ``client`` in through the real login form.

    Returns the session's CSRF token: send it as the form field ``csrf_token`` or the header
    ``X-CSRF-Token`` with every unsafe request of this client.
    """
    role = Role(role)
    username = username or f"{role.value}-1"
    make_account(app, role, username)
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 303, response.get_data(as_text=True)
    token = page_csrf_token(client)
    assert token, "signed in, but the page offers no CSRF token"
    return token
