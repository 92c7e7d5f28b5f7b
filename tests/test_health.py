"""Health and a database that goes away: a clear 503, never a stack trace, and recovery by itself."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import make_url, text

from mapsvc import create_app
from tests.conftest import BISHKEK
from tests.helpers import stored_counts

REPORT = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]}


def test_health_answers_ok(client):
    response = client.get("/api/health")

    assert (response.status_code, response.get_json()) == (200, {"database": "ok"})
    assert response.headers["Cache-Control"] == "no-store"


def _assert_unavailable(client) -> None:
    """Every kind of request answers 503 naming the database, as JSON or as a page.

    The read is one the read cache has not answered yet (a cached answer is served for
    READ_STALE_S seconds without asking the database).
    """
    uncached = client.get("/api/layers", query_string={"category": "raid"})
    for response in (client.get("/api/health"), uncached, client.post("/api/reports", json=REPORT)):
        assert response.status_code == 503
        assert response.get_json() == {"error": "the database is unreachable; try again shortly"}
        assert response.headers["Retry-After"] == "5"
    page = client.post("/report", data={k: str(v) for k, v in REPORT.items()}, headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert "the database is unreachable" in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)


def _assert_serving(app, client, reports: int) -> None:
    assert client.get("/api/health").status_code == 200
    assert client.post("/api/reports", json=REPORT).status_code == 201
    assert client.get("/api/layers").status_code == 200
    assert stored_counts(app)[1] == reports


@pytest.fixture
def own_app(migrated_template, tmp_path):
    """An app on a database of its own, which the test may take away."""
    url = migrated_template.fresh(tmp_path)
    app = create_app({"TESTING": True, "DATABASE_URL": url})
    yield app
    app.extensions["mapsvc.store"].dispose()
    migrated_template.drop(url)


@pytest.mark.engines("postgis")
def test_postgis_outage_answers_503_and_service_resumes(migrated_template, own_app, caplog):
    client = own_app.test_client()
    _assert_serving(own_app, client, 1)
    name = make_url(own_app.config["DATABASE_URL"]).database
    with migrated_template.admin.connect() as admin:
        admin.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        try:
            _assert_unavailable(client)
        finally:
            admin.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))

    _assert_serving(own_app, client, 2)
    assert "Traceback" not in caplog.text
    assert name not in caplog.text


@pytest.mark.engines("sqlite")
def test_sqlite_missing_file_answers_503_and_service_resumes(migrated_template, tmp_path):
    directory = tmp_path / "mounted-later"
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{directory / 'mapsvc.sqlite3'}"})
    client = app.test_client()
    _assert_unavailable(client)

    directory.mkdir()
    shutil.copy(migrated_template.template, directory / "mapsvc.sqlite3")

    _assert_serving(app, client, 1)
    app.extensions["mapsvc.store"].dispose()


def test_cli_names_an_unreachable_database(tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'missing' / 'mapsvc.sqlite3'}"})

    result = app.test_cli_runner().invoke(args=["heat", "rebuild"])

    assert result.exit_code == 1
    assert "the database is unreachable" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("path", ["/api/heat", "/api/layers"])
def test_a_schema_behind_the_migrations_answers_503_naming_the_upgrade(own_app, path):
    client = own_app.test_client()
    store = own_app.extensions["mapsvc.store"]
    cascade = " CASCADE" if store.dialect == "postgresql" else ""
    with store.engine.begin() as connection:  # as if a newer release ran before `db upgrade`
        connection.execute(text("DROP TABLE reports"))
        connection.execute(text(f"DROP TABLE events{cascade}"))
        connection.execute(text("ALTER TABLE heat_series DROP COLUMN last_sum"))

    response = client.get(path)

    assert response.status_code == 503
    assert "mapsvc db upgrade" in response.get_json()["error"]
