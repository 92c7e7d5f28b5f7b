"""Benchmark: does the time the answer to a report takes tell whether it met an event the caller cannot see?

Times POST /api/reports through the app's test client (no network, so nothing hides a
difference) for the cases an anonymous prober can set up, interleaved in random order:

- device point, **merged**: the same bucket already holds an event at the point (a single attack,
  which the public sees only as heat);
- device point, **new**: nothing there;
- exact point, **reused**: the server drew a point within theta of it before (another bucket);
- exact point, **drawn**: nothing within theta: a fresh draw.

Prints medians, 90th percentiles, and a Mann-Whitney U test of merged vs new and reused vs
drawn (p well above 0.05 means the times cannot be told apart in this many samples):

    .venv/bin/python bench/bench_receipt.py --samples 400 --engines sqlite postgis
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from flask import Flask
from scipy import stats
from sqlalchemy import create_engine, make_url, text

from mapsvc import create_app
from mapsvc.config import DEFAULTS
from mapsvc.store.db import Store

NOW = datetime(2026, 6, 15, 22, 30, tzinfo=UTC)
POSTGRES_URL = "postgresql+psycopg://mapsvc_test@127.0.0.1:5432/mapsvc_test"
CATEGORY = "attack"  # heat only: a single event is seen by nobody outside the staff


def _app(url: str, answer_ms: float) -> Flask:
    Store(url).upgrade()
    return create_app(
        {
            "DATABASE_URL": url,
            "INTAKE_ANSWER_MS": answer_ms,
            "CLOCK": lambda: NOW,
            "RATELIMIT_ENABLED": False,
            "READ_CACHE_S": 0,
            "SERVICE_AREA": [70.0, 38.5, 78.0, 44.0],
        }
    )


def _place(i: int) -> tuple[float, float]:
    """Return the i-th of many places 12 km apart (no two meet within any merge or reuse distance)."""
    return round(39.0 + (i // 30) * 0.108, 4), round(70.5 + (i % 30) * 0.149, 4)


def _time(app: Flask, body: dict[str, object]) -> float:
    client = app.test_client()
    started = time.perf_counter()
    response = client.post("/api/reports", json=body)
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.get_json()
    return elapsed * 1000


def measure(app: Flask, samples: int) -> dict[str, list[float]]:
    """Return per case the milliseconds each answer took."""
    client = app.test_client()
    day = NOW - timedelta(days=1)
    # Set-up, untimed: one hidden event at each "merged" place, one earlier draw at each "reused" one.
    merged = [_place(i) for i in range(samples)]
    new = [_place(samples + i) for i in range(samples)]
    reused = [_place(2 * samples + i) for i in range(samples)]
    drawn = [_place(3 * samples + i) for i in range(samples)]
    for lat, lon in merged:
        body = {"category": CATEGORY, "lat": lat, "lon": lon, "fuzzed_on_device": True, "occurred_at": day.isoformat()}
        client.post("/api/reports", json=body)
    for lat, lon in reused:
        earlier = (day - timedelta(days=3)).isoformat()
        client.post("/api/reports", json={"category": CATEGORY, "lat": lat, "lon": lon, "occurred_at": earlier})
    cases = [("merged", p, True) for p in merged] + [("new", p, True) for p in new]
    cases += [("reused", p, False) for p in reused] + [("drawn", p, False) for p in drawn]
    random.Random(7).shuffle(cases)
    times: dict[str, list[float]] = {"merged": [], "new": [], "reused": [], "drawn": []}
    for name, (lat, lon), on_device in cases:
        body = {"category": CATEGORY, "lat": lat, "lon": lon, "occurred_at": day.isoformat()}
        if on_device:
            body["fuzzed_on_device"] = True
        times[name].append(_time(app, body))
    return times


def _postgis_url(base: str) -> str:
    """Return a fresh database made from the base one (which holds the postgis extension)."""
    name = "mapsvc_bench_receipt"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(base).database}"'))
    admin.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    """Measure each engine and answer time setting, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300, help="answers timed per case")
    parser.add_argument("--engines", nargs="+", default=["sqlite"], choices=["sqlite", "postgis"])
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument(
        "--answer-ms", nargs="+", type=float, default=[0, DEFAULTS["INTAKE_ANSWER_MS"]], help="INTAKE_ANSWER_MS values"
    )
    args = parser.parse_args()
    print("| engine | INTAKE_ANSWER_MS | case | median ms | p90 ms | max ms | vs | Mann-Whitney p |")
    print("|---|---:|---|---:|---:|---:|---|---:|")
    for engine in args.engines:
        for answer_ms in args.answer_ms:
            with tempfile.TemporaryDirectory() as scratch:
                sqlite = f"sqlite:///{Path(scratch) / 'receipt.sqlite3'}"
                app = _app(sqlite if engine == "sqlite" else _postgis_url(args.postgres_url), answer_ms)
                times = measure(app, args.samples)
                app.extensions["mapsvc.store"].dispose()
            for name, other in (("merged", "new"), ("new", None), ("reused", "drawn"), ("drawn", None)):
                values = times[name]
                p = f"{stats.mannwhitneyu(values, times[other]).pvalue:.3f}" if other else ""
                print(
                    f"| {engine} | {answer_ms:g} | {name} | {statistics.median(values):.2f} "
                    f"| {np.percentile(values, 90):.2f} | {max(values):.2f} | {other or ''} | {p} |"
                )


if __name__ == "__main__":
    main()
