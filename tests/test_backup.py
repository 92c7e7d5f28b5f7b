"""``mapsvc backup``, ``check-backup`` and ``restore`` on each engine, a backup taken under writes."""

from __future__ import annotations

import os
import random
import sqlite3
import stat
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import create_engine, text

from mapsvc import create_app
from mapsvc.store.db import Store
from tests.conftest import BISHKEK, NOW
from tests.helpers import iso
from tests.servers import MAPSVC

#: Schema revision of this version's newest migration, and one before it.
OLDER = "0009"


@pytest.fixture
def target(migrated_template, tmp_path) -> Iterator[str]:
    """Return the URL of a second migrated database, empty, to restore into."""
    directory = tmp_path / "target"
    directory.mkdir()
    url = migrated_template.fresh(directory)
    yield url
    migrated_template.drop(url)


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``mapsvc`` on ``url`` in a process of its own and return what it did."""
    env = {**os.environ, "MAPSVC_DATABASE_URL": url}
    return subprocess.run([str(MAPSVC), *args], env=env, capture_output=True, text=True, timeout=120)


def _run(config: dict[str, Any], url: str, *args: str) -> Result:
    """Run a ``mapsvc`` command in this process on ``url`` (faster than :func:`_cli`)."""
    app = create_app({**config, "DATABASE_URL": url})
    try:
        return app.test_cli_runner().invoke(args=list(args))
    finally:
        app.extensions["mapsvc.store"].dispose()


def _body(rng: random.Random) -> dict[str, Any]:
    """Return a report: half at one place (they merge), half anywhere near, over a day's buckets."""
    lat, lon = BISHKEK
    if rng.random() < 0.5:
        return {"category": "raid", "lat": lat, "lon": lon, "fuzzed_on_device": True, "occurred_at": iso(NOW)}
    hours = rng.randrange(24)
    place = {"lat": lat + rng.uniform(-0.02, 0.02), "lon": lon + rng.uniform(-0.03, 0.03)}
    return {
        "category": rng.choice(["checkpoint", "raid", "patrol"]),
        **place,
        "occurred_at": iso(NOW - timedelta(hours=hours)),
    }


class Writer(threading.Thread):
    """Posts reports through the app's real intake until stopped; keeps the acknowledged ids in order."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        super().__init__(daemon=True)
        self.client = app.test_client()
        self.acknowledged: list[str] = []
        self.failures: list[int] = []
        self.stop = threading.Event()
        self.rng = random.Random(13)

    def run(self) -> None:
        while not self.stop.is_set():
            response = self.client.post("/api/reports", json=_body(self.rng))
            if response.status_code == 201:
                self.acknowledged.append(response.get_json()["id"])
            else:
                self.failures.append(response.status_code)

    def wait_for(self, count: int) -> None:
        while len(self.acknowledged) < count:
            assert self.is_alive() and not self.failures, self.failures
            self.stop.wait(0.01)


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


STEPS = """
    SELECT s.cell, s.category, t.bucket_start, t.events_total FROM heat_steps t
    JOIN heat_series s ON s.id = t.series_id ORDER BY 1, 2, 3
"""


def test_a_backup_under_writes_restores_every_report_acknowledged_before_it(app, app_config, tmp_path, target):
    """The writer goes on during the backup; the restored store is whole, its heat a rebuild's."""
    writer = Writer(app)
    writer.start()
    try:
        writer.wait_for(40)
        before = list(writer.acknowledged)
        made = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "mapsvc.backup")])
        writer.wait_for(len(writer.acknowledged) + 10)  # and it goes on after
    finally:
        writer.stop.set()
        writer.join(30)
    assert made.exit_code == 0, made.output
    assert not writer.failures

    restored = _cli(target, "restore", str(tmp_path / "mapsvc.backup"))

    assert restored.returncode == 0, restored.stderr
    ids = {public_id for (public_id,) in _rows(target, "SELECT public_id FROM reports")}
    assert set(before) <= ids, f"{len(set(before) - ids)} acknowledged reports are missing"
    assert ids <= set(writer.acknowledged)  # every report the backup holds was answered 201
    [(reports, corroborations)] = _rows(
        target, "SELECT (SELECT count(*) FROM reports), sum(corroborations) FROM events"
    )
    assert corroborations == reports == len(ids)
    steps = _rows(target, STEPS)
    assert steps
    rebuilt = _run(app_config, target, "heat", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert _rows(target, STEPS) == steps


def test_a_backup_is_one_private_file_and_never_replaces_one_unasked(app, runner, report, tmp_path):
    for _ in range(3):
        assert report().status_code == 201
    (tmp_path / "backups").mkdir()
    path = tmp_path / "backups" / "backup"

    first = runner.invoke(args=["backup", str(path)])
    again = runner.invoke(args=["backup", str(path)])

    assert first.exit_code == 0, first.output
    assert "3 reports" in first.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert again.exit_code == 1 and "--force" in again.output
    assert [p.name for p in path.parent.iterdir()] == ["backup"]  # no temporary file left
    replaced = runner.invoke(args=["backup", "--force", str(path)])
    assert replaced.exit_code == 0, replaced.output


def test_check_backup_says_the_revision_and_counts(app, runner, report, tmp_path):
    for _ in range(2):
        assert report().status_code == 201
    runner.invoke(args=["backup", str(tmp_path / "backup")])

    checked = runner.invoke(args=["check-backup", str(tmp_path / "backup")])

    assert checked.exit_code == 0, checked.output
    head = _rows(app.config["DATABASE_URL"], "SELECT version_num FROM alembic_version")[0][0]
    assert f"schema revision {head}" in checked.output
    assert "2 reports" in checked.output


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_damaged_backup_is_refused_and_restores_nothing(app_config, runner, report, tmp_path, target, keep):
    for _ in range(20):
        assert report().status_code == 201
    runner.invoke(args=["backup", str(tmp_path / "backup")])
    whole = (tmp_path / "backup").read_bytes()
    (tmp_path / "cut").write_bytes(whole[: int(len(whole) * keep)])

    checked = _run(app_config, target, "check-backup", str(tmp_path / "cut"))
    restored = _run(app_config, target, "restore", str(tmp_path / "cut"))

    assert checked.exit_code == 1 and restored.exit_code == 1
    assert _rows(target, "SELECT count(*) FROM reports") == [(0,)]


def test_restore_refuses_a_database_that_holds_data_unless_forced(app_config, runner, report, tmp_path, target):
    assert report().status_code == 201
    runner.invoke(args=["backup", str(tmp_path / "backup")])
    assert _run(app_config, target, "restore", str(tmp_path / "backup")).exit_code == 0
    app_of_target = create_app({**app_config, "DATABASE_URL": target})
    try:
        for _ in range(2):
            response = app_of_target.test_client().post(
                "/api/reports", json={"category": "raid", "lat": BISHKEK[0], "lon": BISHKEK[1]}
            )
            assert response.status_code == 201
    finally:
        app_of_target.extensions["mapsvc.store"].dispose()

    refused = _run(app_config, target, "restore", str(tmp_path / "backup"))
    assert refused.exit_code == 1 and "--force" in refused.output
    assert _rows(target, "SELECT count(*) FROM reports") == [(3,)]

    forced = _run(app_config, target, "restore", "--force", str(tmp_path / "backup"))
    assert forced.exit_code == 0, forced.output
    assert _rows(target, "SELECT count(*) FROM reports") == [(1,)]


def test_a_backup_of_an_older_schema_is_migrated_after_its_restore(app_config, migrated_template, tmp_path, target):
    old = migrated_template.empty(tmp_path)
    try:
        store = Store(old)
        store.upgrade(OLDER)
        store.dispose()
        made = _run(app_config, old, "backup", str(tmp_path / "old.backup"))
    finally:
        migrated_template.drop(old)
    assert made.exit_code == 0, made.output
    assert f"schema revision {OLDER}" in made.output

    restored = _run(app_config, target, "restore", str(tmp_path / "old.backup"))

    assert restored.exit_code == 0, restored.output
    assert "migrated to schema revision" in restored.output
    store = Store(target)
    assert store.is_current()
    store.dispose()


@pytest.mark.engines("sqlite")
@pytest.mark.parametrize("revision", ["9999", "001"])  # "001" is no revision, only the start of one
def test_a_backup_from_a_newer_version_is_refused_naming_its_revision(app, runner, tmp_path, revision):
    runner.invoke(args=["backup", str(tmp_path / "backup")])
    with sqlite3.connect(tmp_path / "backup") as backup:
        backup.execute("UPDATE alembic_version SET version_num = ?", (revision,))

    checked = runner.invoke(args=["check-backup", str(tmp_path / "backup")])

    assert checked.exit_code == 1
    assert f"revision {revision}," in checked.output and "newer" in checked.output


@pytest.mark.engines("sqlite")
def test_a_sqlite_backup_holds_what_the_write_ahead_log_holds(app, report, tmp_path, runner):
    """A plain copy of the file misses committed reports still in the log; the backup does not."""
    for _ in range(5):
        assert report().status_code == 201
    database = Path(app.config["DATABASE_URL"].removeprefix("sqlite:///"))
    assert os.path.getsize(f"{database}-wal") > 0  # the reports are in the log, not yet in the file

    runner.invoke(args=["backup", str(tmp_path / "backup")])

    with sqlite3.connect(tmp_path / "backup") as backup:
        assert backup.execute("SELECT count(*) FROM reports").fetchone() == (5,)
        assert backup.execute("PRAGMA journal_mode").fetchone() == ("delete",)
