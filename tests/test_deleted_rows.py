"""A withdrawn or pruned report leaves nothing in the database's files (SQLite), or is vacuumed (PostgreSQL)."""

from __future__ import annotations

import struct
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, create_engine, make_url, text

from mapsvc.cli.maintenance import PRUNED_TABLES as PRUNED
from tests.conftest import NOW

#: A point as a phone sends it after fuzzing; it is stored rounded to 4 decimals.
SENT = (42.87654321, 74.61234567)
STORED = (42.8765, 74.6123)


def _forms(value: float) -> list[bytes]:
    """Return how a stored coordinate can appear in a file: SQLite's REAL (a big-endian double) and text."""
    return [struct.pack(">d", value), struct.pack("<d", value), repr(value).encode()]


def _files(app) -> bytes:
    """Return the bytes of the SQLite database and of its write-ahead log and journal, as they are now."""
    path = Path(make_url(app.config["DATABASE_URL"]).database or "")
    return b"".join(
        p.read_bytes() for p in [path, *(Path(f"{path}{end}") for end in ("-wal", "-journal"))] if p.exists()
    )


def _traces(app) -> list[float]:
    """Return the stored coordinates of which some form lies in the database's files."""
    found = _files(app)
    return [value for value in STORED if any(form in found for form in _forms(value))]


def _report(client) -> dict:
    body = {"category": "raid", "lat": SENT[0], "lon": SENT[1], "fuzzed_on_device": True}
    answer = client.post("/api/reports", json=body)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def _withdraw(client, receipt: dict) -> None:
    answer = client.delete(f"/api/reports/{receipt['id']}", headers={"X-Withdrawal-Code": receipt["withdrawal_code"]})
    assert answer.status_code == 204


@pytest.mark.engines("sqlite")
def test_a_withdrawn_reports_point_is_in_no_file(client, app):
    receipt = _report(client)
    assert _traces(app) == list(STORED)  # the point is there, as SQLite stores a REAL

    _withdraw(client, receipt)

    assert _traces(app) == []


@pytest.mark.engines("sqlite")
def test_a_pruned_events_point_is_in_no_file(client, app, clock, runner):
    _report(client)
    assert _traces(app) == list(STORED)
    clock.now = NOW + timedelta(days=app.config["RETENTION_DAYS"] + 30)

    result = runner.invoke(args=["prune"])

    assert "1 events pruned" in result.output
    assert _traces(app) == []


@pytest.mark.engines("sqlite")
def test_deleting_nothing_leaves_the_log_alone(client, app):
    _report(client)
    wal = Path(f"{make_url(app.config['DATABASE_URL']).database}-wal")
    before = wal.stat().st_size

    client.delete("/api/reports/nothing", headers={"X-Withdrawal-Code": "wrong"})

    assert wal.stat().st_size >= before > 0


@pytest.mark.engines("postgis")
def test_prune_vacuums_the_tables_it_deleted_from(client, app, clock, runner):
    for _ in range(3):
        _withdraw(client, _report(client))  # dead rows that no prune deleted, only a withdrawal
    _report(client)
    clock.now = NOW + timedelta(days=app.config["RETENTION_DAYS"] + 30)

    result = runner.invoke(args=["prune"])

    assert "1 events pruned" in result.output
    engine = create_engine(app.config["DATABASE_URL"])
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT relname, last_vacuum IS NOT NULL, n_dead_tup FROM pg_stat_user_tables"
                " WHERE relname IN ('events', 'reports', 'heat_steps') ORDER BY relname"
            )
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("events", True, 0), ("heat_steps", True, 0), ("reports", True, 0)]


def _files_of(app, tables: tuple[str, ...]) -> dict[str, int]:
    engine = create_engine(app.config["DATABASE_URL"])
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT relname, relfilenode FROM pg_class WHERE relname IN :names").bindparams(
                bindparam("names", expanding=True)
            ),
            {"names": list(tables)},
        ).all()
    engine.dispose()
    return dict(rows)


@pytest.mark.engines("postgis")
def test_a_full_prune_writes_the_tables_anew(client, app, runner):
    _withdraw(client, _report(client))
    before = _files_of(app, PRUNED)

    result = runner.invoke(args=["prune", "--full"])

    assert result.exit_code == 0, result.output
    after = _files_of(app, PRUNED)
    assert set(before) == set(after) == set(PRUNED)
    assert all(after[t] != before[t] for t in PRUNED)  # new files; the old ones, with the dead rows, are gone


@pytest.mark.engines("sqlite")
def test_a_full_prune_on_sqlite_leaves_nothing_either(client, app, runner):
    _withdraw(client, _report(client))

    result = runner.invoke(args=["prune", "--full"])

    assert result.exit_code == 0, result.output
    assert _traces(app) == []
