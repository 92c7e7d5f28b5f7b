"""Benchmark: intake rate and read latency of /api/heat and /api/layers by store size.

Builds (once, then reuses) stores of synthetic reports spread over a year, through the same
fuzzing, merging and heat code as the API, and prints a table:

    .venv/bin/python bench/bench_store.py --sizes 10000 100000 1000000

Stores are kept in bench/results/ (ignored by git); pass --rebuild to make them again.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from mapsvc import create_app
from mapsvc.demo import generate
from mapsvc.settings import settings
from mapsvc.store.db import Store
from mapsvc.store.events import record_report
from mapsvc.web.reporting import publish

NOW = datetime(2026, 6, 15, 22, 30, tzinfo=UTC)
RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 5000


def _config(path: Path) -> dict[str, object]:
    return {"DATABASE_URL": f"sqlite:///{path}", "CLOCK": lambda: NOW, "MAX_REPORT_AGE_DAYS": 400}


def build(path: Path, size: int, seed: int) -> float:
    """Fill a new store at ``path`` with ``size`` reports over the year before NOW; return seconds."""
    path.unlink(missing_ok=True)
    Store(f"sqlite:///{path}").upgrade()
    app = create_app(_config(path))
    started = time.perf_counter()
    with app.app_context():
        s = settings()
        store = app.extensions["mapsvc.store"]
        made = generate(s.area, size, NOW, timedelta(days=365), np.random.default_rng(seed), zone=s.timezone)
        # Reports arrive in time order, as they would over a year of intake.
        reports = iter(sorted(made, key=lambda r: r.occurred_at))
        done = 0
        while done < size:
            batch = [publish(next(reports).as_submission(), s) for _ in range(min(BATCH, size - done))]
            with store.writing() as session:
                for report in batch:
                    record_report(session, report, s.policies[report.category], s.level, s.heat_resolution)
            done += len(batch)
            print(f"\r  building {size:,}: {done:,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    store.dispose()
    return time.perf_counter() - started


def intake_rate(path: Path, count: int) -> float:
    """Post ``count`` reports through the API on a copy of the store; return reports per second."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.sqlite3"
        shutil.copy(path, copy)
        app = create_app(_config(copy))
        client = app.test_client()
        rng = random.Random(7)
        min_lon, min_lat, max_lon, max_lat = app.extensions["mapsvc.settings"].area.bounds
        bodies = [
            {
                "category": rng.choice(["checkpoint", "raid", "patrol", "extortion", "attack"]),
                "lat": rng.uniform(min_lat, max_lat),
                "lon": rng.uniform(min_lon, max_lon),
            }
            for _ in range(count)
        ]
        started = time.perf_counter()
        for body in bodies:
            if client.post("/api/reports", json=body).status_code != 201:
                raise RuntimeError("intake failed during the benchmark")
        elapsed = time.perf_counter() - started
        app.extensions["mapsvc.store"].dispose()
    return count / elapsed


def read_times(path: Path, url: str, repeats: int) -> tuple[float, float, int]:
    """Return (median ms, p95 ms, body bytes) of GET ``url`` after warming up."""
    app = create_app(_config(path))
    client = app.test_client()
    for _ in range(3):
        body = client.get(url).data
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    app.extensions["mapsvc.store"].dispose()
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))], len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--intake", type=int, default=1000, help="reports posted to measure intake")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--build-only", action="store_true", help="build missing stores and stop")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    rows = []
    for size in args.sizes:
        path = RESULTS / f"store-{size}.sqlite3"
        build_s = build(path, size, seed=size) if args.rebuild or not path.exists() else float("nan")
        if args.build_only:
            print(f"  built {size:,} in {build_s:.0f} s", file=sys.stderr)
            continue
        app = create_app(_config(path))
        with app.app_context():
            from sqlalchemy import func, select

            from mapsvc.store.models import Event, Report

            with app.extensions["mapsvc.store"].reader() as session:
                events = session.scalar(select(func.count()).select_from(Event))
                reports = session.scalar(select(func.count()).select_from(Report))
        rate = intake_rate(path, args.intake)
        heat = read_times(path, "/api/heat", args.repeats)
        layers = read_times(path, "/api/layers", args.repeats)
        rows.append((size, reports, events, build_s, rate, heat, layers))
        print(f"  measured {size:,}", file=sys.stderr)
    print()
    print(
        "| reports | events | build s | intake reports/s | heat median ms | heat p95 ms | heat KB "
        "| layers median ms | layers p95 ms | layers KB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for _size, reports, events, build_s, rate, heat, layers in rows:
        print(
            f"| {reports:,} | {events:,} | {build_s:.0f} | {rate:.0f} | {heat[0]:.1f} | {heat[1]:.1f} | "
            f"{heat[2] / 1024:.0f} | {layers[0]:.1f} | {layers[1]:.1f} | {layers[2] / 1024:.0f} |"
        )
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print()
        print(
            f"growth {first[0]:,} -> {last[0]:,}: heat x{last[5][0] / first[5][0]:.2f}, "
            f"layers x{last[6][0] / first[6][0]:.2f}"
        )


if __name__ == "__main__":
    main()
