"""Fixtures: an app on a fresh migrated SQLite file per test, a fixed clock, seeded noise."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from mapsvc import create_app
from mapsvc.store.db import Store

#: The tests' "now": reports and queries are made relative to it.
NOW = datetime(2026, 6, 15, 22, 30, tzinfo=UTC)

#: A point in central Bishkek, inside the default service area.
BISHKEK = (42.8746, 74.5698)


class Clock:
    """A settable clock for the app under test."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a SQLite file brought to head by the migrations, once per test session."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    store = Store(f"sqlite:///{path}")
    store.upgrade()
    store.dispose()
    return path


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_config(tmp_path: Path, migrated_template: Path, clock: Clock) -> dict[str, Any]:
    """Return the test configuration; tests may change it before asking for ``app``."""
    database = tmp_path / "mapsvc.sqlite3"
    shutil.copy(migrated_template, database)
    return {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{database}",
        "CLOCK": clock,
        "FUZZ_RNG": random.Random(20261122),
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
