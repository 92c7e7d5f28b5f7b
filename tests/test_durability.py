"""An acknowledged report is stored for good: SQLite syncs each commit, and kill -9 loses none."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from mapsvc import create_app
from tests.conftest import BISHKEK
from tests.servers import NO_PER_WORKER_COUNTS, request, serving, start, stop

#: ``PRAGMA synchronous`` answers its level as a number.
LEVELS = {"NORMAL": 1, "FULL": 2}


def _synchronous(app) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["mapsvc.store"].engine.connect() as connection:
        return int(connection.execute(text("PRAGMA synchronous")).scalar_one())


@pytest.mark.engines("sqlite")
def test_sqlite_syncs_every_commit_by_default(app):
    assert _synchronous(app) == LEVELS["FULL"]


@pytest.mark.engines("sqlite")
@pytest.mark.parametrize("level", ["NORMAL", "full"])
def test_sqlite_synchronous_is_a_setting(app_config, level):
    app = create_app({**app_config, "SQLITE_SYNCHRONOUS": level})
    try:
        assert _synchronous(app) == LEVELS[level.upper()]
    finally:
        app.extensions["mapsvc.store"].dispose()


@pytest.mark.engines("sqlite")
@pytest.mark.parametrize("level", ["OFF", "EXTRA", "", 2])
def test_other_synchronous_levels_are_refused_naming_the_setting(app_config, level):
    with pytest.raises(ValueError, match="SQLITE_SYNCHRONOUS"):
        create_app({**app_config, "SQLITE_SYNCHRONOUS": level})


#: Clients posting at once, and how many acknowledged reports the server is killed after.
CLIENTS = 6
KILL_AFTER = 40


class Client(threading.Thread):
    """Posts reports over one connection until the server dies; keeps the ids answered 201."""

    def __init__(self, port: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.rng = random.Random(seed)
        self.acknowledged: list[str] = []

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        lat, lon = BISHKEK
        try:
            while True:
                body = {
                    "category": self.rng.choice(["checkpoint", "raid", "patrol"]),
                    "lat": lat + self.rng.uniform(-0.02, 0.02),
                    "lon": lon + self.rng.uniform(-0.03, 0.03),
                }
                connection.request("POST", "/api/reports", json.dumps(body), {"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                if response.status == 201:
                    self.acknowledged.append(json.loads(answer)["id"])
        except (OSError, http.client.HTTPException):
            return  # the server was killed
        finally:
            connection.close()


def _stored_ids(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT public_id FROM reports")).scalars())
    finally:
        engine.dispose()


@pytest.fixture
def database(migrated_template, tmp_path) -> Iterator[str]:
    url = migrated_template.fresh(tmp_path)
    yield url
    migrated_template.drop(url)


def test_kill_9_during_intake_loses_no_acknowledged_report(database, tmp_path, app_config):
    """SIGKILL to the server and its workers while clients post; every 201 is stored after a restart."""
    settings = {"INTAKE_ANSWER_MS": "0", **NO_PER_WORKER_COUNTS}
    server, port = start(database, tmp_path / "server.log", workers=2, own_group=True, **settings)
    clients = [Client(port, seed) for seed in range(CLIENTS)]
    try:
        for client in clients:
            client.start()
        deadline = time.monotonic() + 60
        while sum(len(c.acknowledged) for c in clients) < KILL_AFTER:
            assert time.monotonic() < deadline and any(c.is_alive() for c in clients), "intake stopped"
            time.sleep(0.01)
        os.killpg(server.pid, signal.SIGKILL)
        for client in clients:
            client.join(30)
    finally:
        stop(server, tmp_path / "server.log")
    acknowledged = {i for c in clients for i in c.acknowledged}
    assert len(acknowledged) >= KILL_AFTER

    with serving(database, tmp_path / "again.log", workers=1) as again:
        assert (
            request(again, "POST", "/api/reports", {"category": "raid", "lat": BISHKEK[0], "lon": BISHKEK[1]})[0] == 201
        )
    stored = _stored_ids(database)

    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged reports were lost"
    restarted = create_app({**app_config, "DATABASE_URL": database})
    try:
        steps = _steps(database)
        assert restarted.test_cli_runner().invoke(args=["heat", "rebuild"]).exit_code == 0
        assert _steps(database) == steps
    finally:
        restarted.extensions["mapsvc.store"].dispose()


def _steps(url: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    sql = """
        SELECT s.cell, s.category, t.bucket_start, t.events_total FROM heat_steps t
        JOIN heat_series s ON s.id = t.series_id ORDER BY 1, 2, 3
    """
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()
