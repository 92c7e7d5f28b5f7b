"""Benchmark: intake rate and read latency of /api/heat and /api/layers by store size and engine.

Builds (once, then reuses) stores of synthetic reports spread over a year, through the same
fuzzing, merging and heat code as the API, on each engine, and prints them side by side:

    .venv/bin/python bench/bench_store.py --sizes 10000 100000 1000000 --engines sqlite postgis

Intake is measured through a real server (``mapsvc serve --workers N``) on a copy of each store,
with concurrent HTTP clients in separate processes on loopback. Reads go through the app's test
client (no network), median and p95 over ``--repeats``.

SQLite stores are kept in bench/results/ (ignored by git); PostGIS stores are databases named
mapsvc_bench_<size> on --postgres-url's server (made from its database, which must hold the
postgis extension: scripts/postgis.sh makes one). Pass --rebuild to make them again.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, make_url, text

from mapsvc import create_app
from mapsvc.server.worker_counts import PASSWORD_SETTINGS
from mapsvc.services.demo import generate
from mapsvc.services.intake import check, store_checked
from mapsvc.settings import settings
from mapsvc.store.db import Store

NOW = datetime(2026, 6, 15, 22, 30, tzinfo=UTC)
RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 5000
#: What the bench reads: the whole city at the default resolution and layer limit.
READS = ("/api/heat", "/api/layers")


POSTGRES_URL = "postgresql+psycopg://mapsvc_test@127.0.0.1:5432/mapsvc_test"
COMPLETE = "mapsvc bench store complete"


def _config(url: str) -> dict[str, object]:
    return {"DATABASE_URL": url, "CLOCK": lambda: NOW, "MAX_REPORT_AGE_DAYS": 400}


@dataclass(frozen=True)
class Stores:
    """Where one engine keeps its benchmark stores, and how to copy them."""

    engine: str
    postgres_url: str

    def url(self, size: int) -> str:
        if self.engine == "sqlite":
            return f"sqlite:///{RESULTS / f'store-{size}.sqlite3'}"
        return make_url(self.postgres_url).set(database=f"mapsvc_bench_{size}").render_as_string(hide_password=False)

    def _admin(self):  # type: ignore[no-untyped-def]
        return create_engine(make_url(self.postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT")

    def exists(self, size: int) -> bool:
        if self.engine == "sqlite":
            return Path(make_url(self.url(size)).database or "").exists()
        with self._admin().connect() as c:
            name = f"mapsvc_bench_{size}"
            found = c.execute(
                text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"), {"n": name}
            )
            return found.scalar() == COMPLETE

    def create(self, size: int) -> None:
        if self.engine == "sqlite":
            Path(make_url(self.url(size)).database or "").unlink(missing_ok=True)
        else:
            name, base = f"mapsvc_bench_{size}", make_url(self.postgres_url).database
            with self._admin().connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{base}"'))
        Store(self.url(size)).upgrade()

    def mark_complete(self, size: int) -> None:
        if self.engine == "postgis":
            with self._admin().connect() as c:
                c.execute(text(f"COMMENT ON DATABASE \"mapsvc_bench_{size}\" IS '{COMPLETE}'"))
                c.execute(text("VACUUM ANALYZE"))
            with create_engine(self.url(size), isolation_level="AUTOCOMMIT").connect() as c:
                c.execute(text("VACUUM ANALYZE"))

    @contextmanager
    def copy(self, size: int, directory: Path) -> Iterator[str]:
        """Yield the URL of a throwaway copy of a store."""
        if self.engine == "sqlite":
            target = directory / "copy.sqlite3"
            shutil.copy(make_url(self.url(size)).database or "", target)
            yield f"sqlite:///{target}"
            return
        name = f"mapsvc_bench_copy_{os.getpid()}"
        with self._admin().connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "mapsvc_bench_{size}"'))
        try:
            yield make_url(self.postgres_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with self._admin().connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def build(stores: Stores, size: int, seed: int) -> float:
    """Fill a new store with ``size`` reports over the year before NOW; return seconds."""
    stores.create(size)
    app = create_app(_config(stores.url(size)))
    started = time.perf_counter()
    with app.app_context():
        s = settings()
        store = app.extensions["mapsvc.store"]
        made = generate(s.area, size, NOW, timedelta(days=365), np.random.default_rng(seed), zone=s.timezone)
        # Reports arrive in time order, as they would over a year of intake.
        reports = iter(sorted(made, key=lambda r: r.occurred_at))
        done = 0
        while done < size:
            batch = [check(next(reports).as_submission(), s) for _ in range(min(BATCH, size - done))]
            with store.writing() as session:
                for checked in batch:
                    store_checked(session, checked, s)
            done += len(batch)
            print(f"\r  building {size:,}: {done:,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    store.dispose()
    stores.mark_complete(size)
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post_reports(port: int, bodies: list[dict[str, object]]) -> int:
    """Post reports over one keep-alive connection; return how many were acknowledged (201)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    acknowledged = 0
    for body in bodies:
        connection.request("POST", "/api/reports", json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        acknowledged += response.status == 201
    connection.close()
    return acknowledged


@contextmanager
def serving(url: str, workers: int) -> Iterator[int]:
    """Run ``mapsvc serve`` on a free loopback port against ``url``; yield the port."""
    port = _free_port()
    # All the bench's clients share one address: the per-address limits (and burst holds) would
    # answer 429 after a few dozen reports, so they are off, as for many phones on many addresses.
    env = {
        **os.environ,
        "MAPSVC_DATABASE_URL": url,
        "MAPSVC_RATELIMIT_ENABLED": "false",
        "MAPSVC_INTAKE_ANSWER_MS": "0",  # the work itself, not the fixed answer moment
        # Nobody signs in: the budgets of wrong passwords are off too, or several workers would
        # each count them apart in memory, which `mapsvc serve` refuses.
        **{f"MAPSVC_{name}": '""' for name in PASSWORD_SETTINGS},
    }
    mapsvc = str(Path(sys.executable).parent / "mapsvc")
    server = subprocess.Popen(
        [mapsvc, "serve", "--port", str(port), "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL
    )
    try:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(30)


def intake_rate(stores: Stores, size: int, count: int, workers: int, clients: int) -> float:
    """Post ``count`` reports to a real server on a copy of the store; return reports per second."""
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp, stores.copy(size, Path(tmp)) as url:
        Store(url).upgrade()  # a store built before the newest migration (the copy, never the store)
        min_lon, min_lat, max_lon, max_lat = create_app(_config(url)).extensions["mapsvc.settings"].area.bounds
        bodies = [
            {
                "category": rng.choice(["checkpoint", "raid", "patrol", "extortion", "attack"]),
                "lat": rng.uniform(min_lat, max_lat),
                "lon": rng.uniform(min_lon, max_lon),
            }
            for _ in range(count)
        ]
        with serving(url, workers) as port, ProcessPoolExecutor(clients) as pool:
            _post_reports(port, bodies[:5])  # every worker imported and connected
            started = time.perf_counter()
            done = sum(pool.map(_post_reports, [port] * clients, [bodies[i::clients] for i in range(clients)]))
            elapsed = time.perf_counter() - started
    if done != count:
        raise RuntimeError(f"only {done} of {count} reports were acknowledged during the benchmark")
    return count / elapsed


def read_times(db_url: str, url: str, repeats: int, cached: bool) -> tuple[float, float, int]:
    """Return (median ms, p95 ms, gzipped body bytes) of GET ``url`` as a phone asks (gzip).

    ``cached``: the read cache on (the service's default; between two writes the answer is
    computed once) or off (every request computes its answer: the first read after a write).
    """
    # One client asking repeatedly: the anonymous read limit (READ_RATE_LIMIT) would refuse it.
    app = create_app({**_config(db_url), "RATELIMIT_ENABLED": False, **({} if cached else {"READ_CACHE_S": 0})})
    client = app.test_client()
    headers = {"Accept-Encoding": "gzip"}
    for _ in range(3):
        body = client.get(url, headers=headers).data
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    app.extensions["mapsvc.store"].dispose()
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))], len(body)


def measure(stores: Stores, size: int, args: argparse.Namespace) -> tuple[object, ...]:
    """Build the store if needed and return (reports, events, build s, intake/s, heat, layers)."""
    build_s = build(stores, size, seed=size) if args.rebuild or not stores.exists(size) else float("nan")
    if args.build_only:
        print(f"  built {stores.engine} {size:,} in {build_s:.0f} s", file=sys.stderr)
        return ()
    from sqlalchemy import func, select

    from mapsvc.store.models import Event, Report

    app = create_app(_config(stores.url(size)))
    with app.extensions["mapsvc.store"].reader() as session:
        events = session.scalar(select(func.count()).select_from(Event))
        reports = session.scalar(select(func.count()).select_from(Report))
    app.extensions["mapsvc.store"].dispose()
    rate = intake_rate(stores, size, args.intake, args.workers, args.clients)
    reads = [read_times(stores.url(size), path, args.repeats, cached) for path in READS for cached in (True, False)]
    print(f"  measured {stores.engine} {size:,}", file=sys.stderr)
    return reports, events, build_s, rate, reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", choices=["sqlite", "postgis"], default=["sqlite", "postgis"])
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="server and base database for PostGIS stores")
    parser.add_argument("--intake", type=int, default=1000, help="reports posted to measure intake")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers while measuring intake")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes while measuring intake")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--build-only", action="store_true", help="build missing stores and stop")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    results: dict[tuple[int, str], tuple] = {}
    for size in args.sizes:
        for engine in args.engines:
            results[(size, engine)] = measure(Stores(engine, args.postgres_url), size, args)
    if args.build_only:
        return
    print()
    print(f"intake: {args.workers} gunicorn workers, {args.clients} client processes, {args.intake} reports")
    print()
    columns = ["reports", "events", "build s", "intake reports/s"]
    for path in READS:
        name = path.rsplit("/", 1)[1]
        columns += [f"{name} cached ms", f"{name} computed ms", f"{name} computed p95 ms", f"{name} gzip KB"]
    print("| size | engine | " + " | ".join(columns) + " |")
    print("|---:|---|" + "---:|" * len(columns))
    for (size, engine), (reports, events, build_s, rate, reads) in results.items():
        cells = [f"{reports:,}", f"{events:,}", f"{build_s:.0f}", f"{rate:.0f}"]
        for cached, computed in zip(reads[::2], reads[1::2], strict=True):
            cells += [f"{cached[0]:.1f}", f"{computed[0]:.1f}", f"{computed[1]:.1f}", f"{computed[2] / 1024:.0f}"]
        print(f"| {size:,} | {engine} | " + " | ".join(cells) + " |")
    print()
    print("cached: median of repeated reads between two writes (the read cache on, as served);")
    print("computed: the read cache off, so every read computes its answer, as the first after a write.")


if __name__ == "__main__":
    main()
