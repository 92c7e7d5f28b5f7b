"""Fixtures: an app on a fresh migrated database per test, on each engine; a fixed clock, seeded noise.

Every test that uses a database runs once per engine (``[sqlite]``, ``[postgis]``). Choose the
engines with ``--engine sqlite`` (repeatable) or ``MAPSVC_TEST_ENGINES=sqlite``; the default is
both, and a PostgreSQL that cannot be reached is an error, never a skip.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from mapsvc import create_app
from mapsvc.web.hooks import limits as rate_limits
from mapsvc.web.hooks import windows as limit_windows
from tests.databases import DEFAULT_POSTGRES_URL, ENGINES, PostgisDatabases, SqliteDatabases, selected_engines

#: The tests' "now": reports and queries are made relative to it.
NOW = datetime(2026, 6, 15, 22, 30, tzinfo=UTC)

#: A point in central Bishkek, inside the default service area.
BISHKEK = (42.8746, 74.5698)

#: The tests' TOTP_ENCRYPTION_KEY (32 bytes in URL-safe base64); production has no default.
TOTP_KEY = "dGhlIHRlc3RzJyBUT1RQIGtleSwgMzIgYnl0ZXMgISE="


class Clock:
    """A settable clock for the app under test."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class _SaltDay(datetime):
    """``datetime`` as :mod:`mapsvc.web.hooks.limits` sees it in tests: ``now()`` is always NOW."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return NOW.astimezone(tz) if tz is not None else NOW.replace(tzinfo=None)


@pytest.fixture(autouse=True, scope="session")
def _one_rate_limit_day() -> Iterator[None]:
    """Keep the rate-limit key of an address the same for the whole run (module fixtures too).

    ``client_key`` salts the address with the wall clock's UTC day (not the app's clock), so a
    test that ran across midnight UTC changed keys halfway, its limit and burst counts started
    again, and the tests that expect a 429 or a hold failed: about 1.4e-4 of runs (some 12 s of
    the suite's requests count towards a limit they then assert; 12 s / 86,400 s). The day is
    NOW's throughout.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rate_limits, "datetime", _SaltDay)
        yield


class WindowClock:
    """``time`` as :mod:`mapsvc.web.hooks.windows` sees it in tests: NOW, unless a test moves ``now``."""

    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def time(self) -> float:
        return self.now


@pytest.fixture(autouse=True, scope="session")
def _one_limit_window() -> Iterator[None]:
    """Keep every rate-limit and burst-hold window the same for the whole run (NOW's).

    The windows are the clock's own (each minute, each hour), so a test that sends N requests
    and expects the (N+1)th refused would fail whenever a window ended between them (about one
    run in 600 for a second's requests against a minute's limit). A test that needs the next
    window moves ``limit_windows.time.now``. Servers run in other processes are not pinned:
    their tests choose hour or day windows and keep clear of a window's end.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(limit_windows, "time", WindowClock())
        yield


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        action="append",
        choices=ENGINES,
        help="database engine to run the tests on (repeatable; default MAPSVC_TEST_ENGINES, else both)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engines(*names): run the test only on these engines")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that reaches the database once per selected engine."""
    if "engine" not in metafunc.fixturenames:
        return
    engines = selected_engines(metafunc.config.getoption("engine"))
    marker = metafunc.definition.get_closest_marker("engines")
    if marker is not None:
        engines = [e for e in engines if e in marker.args]
    metafunc.parametrize("engine", engines, indirect=True, scope="session")


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> str:
    """Return the engine under test ("sqlite" or "postgis")."""
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def migrated_template(
    engine: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SqliteDatabases | PostgisDatabases]:
    """Return the engine's migrated databases: made once per session and worker, dropped after."""
    databases: SqliteDatabases | PostgisDatabases
    if engine == "sqlite":
        databases = SqliteDatabases(tmp_path_factory.mktemp("template"))
    else:
        databases = PostgisDatabases(os.environ.get("MAPSVC_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    yield databases
    databases.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_config(tmp_path: Path, migrated_template: SqliteDatabases | PostgisDatabases, clock: Clock) -> dict[str, Any]:
    """Return the test configuration; tests may change it before asking for ``app``."""
    return {
        "TESTING": True,
        "DATABASE_URL": migrated_template.per_test(tmp_path),
        "CLOCK": clock,
        "FUZZ_RNG": random.Random(20261122),
        # Fast password hashing, and no rate limits unless a test turns them on.
        "ARGON2_PROFILE": "CHEAPEST",
        "RATELIMIT_ENABLED": False,
        "INTAKE_ANSWER_MS": 0,  # a fixed answer time is tested where it is the point
        "TOTP_ENCRYPTION_KEY": TOTP_KEY,
    }


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    application = create_app(app_config)
    yield application
    application.extensions["mapsvc.store"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def report(client: FlaskClient):  # type: ignore[no-untyped-def]
    """Return a function that posts a report and returns the response."""

    def post(**fields: Any):  # type: ignore[no-untyped-def]
        body = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1], **fields}
        return client.post("/api/reports", json=body)

    return post
