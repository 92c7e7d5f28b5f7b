"""Concurrent intake through a real server with several workers, on each engine.

Four client processes post 200 reports at once to ``mapsvc serve --workers 3``: 140 of one
checkpoint at one place and bucket (they must merge into one event, exactly once each), 40 raids
at one place in 40 buckets (one heat series, created and stepped by racing writers) and 20
patrols at distinct places. Every acknowledged report must be stored, and the heat built
incrementally under the race must equal the heat rebuilt from the events afterwards.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import subprocess
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import BISHKEK
from tests.servers import MAPSVC, NO_PER_WORKER_COUNTS, request, serving

PROCESSES = 4
SAME_PLACE = 35  # per process: identical device-fuzzed checkpoints, one bucket
RAID_BUCKETS = 10  # per process: raids at one place, each in a bucket of its own
PATROL_PLACES = 5  # per process: patrols at places far apart


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _bodies(process: int, now: datetime) -> list[dict[str, Any]]:
    """Return one client's reports, shuffled so that the processes' writes interleave."""
    lat, lon = BISHKEK
    same = {"category": "checkpoint", "lat": lat, "lon": lon, "occurred_at": _iso(now - timedelta(minutes=90))}
    bodies = [dict(same) for _ in range(SAME_PLACE)]
    for i in range(RAID_BUCKETS):
        hours = 2 + process * RAID_BUCKETS + i
        bodies.append({"category": "raid", "lat": lat, "lon": lon, "occurred_at": _iso(now - timedelta(hours=hours))})
    for i in range(PATROL_PLACES):
        place = (lat - 0.03 + 0.012 * i, lon - 0.06 + 0.015 * process)
        bodies.append({"category": "patrol", "lat": place[0], "lon": place[1], "occurred_at": same["occurred_at"]})
    for body in bodies:
        body["fuzzed_on_device"] = True
    random.Random(process).shuffle(bodies)
    return bodies


def _fire(port: int, bodies: list[dict[str, Any]]) -> list[int]:
    """Post the reports over one keep-alive connection; return the statuses."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    statuses = []
    for body in bodies:
        connection.request("POST", "/api/reports", json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
    connection.close()
    return statuses


def _get(port: int, path: str) -> tuple[int, Any]:
    return request(port, "GET", path)


@pytest.fixture
def database(migrated_template, tmp_path) -> Iterator[str]:
    url = migrated_template.fresh(tmp_path)
    yield url
    migrated_template.drop(url)


@pytest.fixture
def server(database, tmp_path) -> Iterator[int]:
    """Run ``mapsvc serve --workers 3`` on a free loopback port; yield the port once it is healthy."""
    with serving(database, tmp_path / "server.log", workers=3, **NO_PER_WORKER_COUNTS) as port:
        yield port


def _scalars(url: str, *queries: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [connection.execute(text(q)).scalar() for q in queries]
    finally:
        engine.dispose()


def _steps(url: str) -> list[tuple[str, str, str, int]]:
    engine = create_engine(url)
    sql = """
        SELECT s.cell, s.category, t.bucket_start, t.events_total FROM heat_steps t
        JOIN heat_series s ON s.id = t.series_id ORDER BY 1, 2, 3
    """
    try:
        with engine.connect() as connection:
            return [(c, k, str(b), n) for c, k, b, n in connection.execute(text(sql))]
    finally:
        engine.dispose()


def _heat_features(port: int, at: datetime) -> list[Any]:
    status, body = _get(port, f"/api/heat?at={_iso(at)}")
    assert status == 200
    return body["features"]


def test_concurrent_reports_merge_exactly_once_and_heat_stays_exact(server, database):
    now = datetime.now(UTC)
    batches = [_bodies(p, now) for p in range(PROCESSES)]
    context = multiprocessing.get_context("spawn")

    with ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        statuses = [s for batch in pool.map(_fire, [server] * PROCESSES, batches) for s in batch]

    acknowledged = statuses.count(201)
    assert acknowledged == len(statuses) == PROCESSES * (SAME_PLACE + RAID_BUCKETS + PATROL_PLACES)
    events, corroborations, reports, merged = _scalars(
        database,
        "SELECT count(*) FROM events",
        "SELECT sum(corroborations) FROM events",
        "SELECT count(*) FROM reports",
        "SELECT corroborations FROM events WHERE category = 'checkpoint'",
    )
    assert events == 1 + PROCESSES * (RAID_BUCKETS + PATROL_PLACES)
    assert corroborations == reports == acknowledged
    assert merged == PROCESSES * SAME_PLACE

    heat_under_race, steps_under_race = _heat_features(server, now), _steps(database)
    rebuilt = subprocess.run(
        [str(MAPSVC), "heat", "rebuild"], env={**os.environ, "MAPSVC_DATABASE_URL": database}, capture_output=True
    )
    assert rebuilt.returncode == 0, rebuilt.stderr.decode()

    assert heat_under_race, "the raids' cell must be published"
    assert _heat_features(server, now) == heat_under_race
    assert _steps(database) == steps_under_race
