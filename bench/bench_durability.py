"""Benchmark: what SQLite's ``synchronous=FULL`` costs report intake, against ``NORMAL``.

Each round serves a fresh migrated SQLite file with ``mapsvc serve`` (``--workers``, 4 threads
each) and posts ``--reports`` reports from ``--clients`` client processes over loopback, once
with each level, alternating, so that both meet the same machine. Prints the latency of each
``POST /api/reports`` (p50, p95) and the rate over all rounds, and what one write transaction
of one row costs at each level, alone (the sync itself):

    .venv/bin/python bench/bench_durability.py --rounds 3 --reports 1000

The file lives in ``--dir`` (default: a temporary folder in bench/results/): put it on the disk
the service's instance folder is on, since what FULL costs is one fsync of the log per commit.
Limits are off (every client shares one address) and ``INTAKE_ANSWER_MS`` is 0: the work is
timed, not the fixed answer moment.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from mapsvc.server.worker_counts import PASSWORD_SETTINGS
from mapsvc.store.db import SQLITE_SYNCHRONOUS_LEVELS, Store

RESULTS = Path(__file__).resolve().parent / "results"
#: Central Bishkek (the default service area), spread over a few kilometres.
CENTRE = (42.8746, 74.5698)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(url: str, level: str, workers: int) -> Iterator[int]:
    """Run ``mapsvc serve`` on ``url`` with ``SQLITE_SYNCHRONOUS=level``; yield its port once it answers."""
    port = _free_port()
    env = {
        **os.environ,
        "MAPSVC_DATABASE_URL": url,
        "MAPSVC_SQLITE_SYNCHRONOUS": level,
        "MAPSVC_RATELIMIT_ENABLED": "false",
        "MAPSVC_INTAKE_ANSWER_MS": "0",
        # Nobody signs in: several workers may then keep their (unused) counts in memory.
        **{f"MAPSVC_{name}": '""' for name in PASSWORD_SETTINGS},
    }
    mapsvc = str(Path(sys.executable).parent / "mapsvc")
    command = [mapsvc, "serve", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if server.poll() is not None:
                raise RuntimeError(f"mapsvc serve exited with {server.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(30)


def _post(port: int, bodies: list[dict[str, object]]) -> list[float]:
    """Post reports over one keep-alive connection; return each one's seconds (all must be 201)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for body in bodies:
        started = time.perf_counter()
        connection.request("POST", "/api/reports", json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        times.append(time.perf_counter() - started)
        if response.status != 201:
            raise RuntimeError(f"a report was answered {response.status}")
    connection.close()
    return times


def _bodies(count: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    categories = ["checkpoint", "raid", "patrol", "extortion", "attack"]
    return [
        {
            "category": rng.choice(categories),
            "lat": CENTRE[0] + rng.uniform(-0.03, 0.03),
            "lon": CENTRE[1] + rng.uniform(-0.04, 0.04),
        }
        for _ in range(count)
    ]


def one_round(directory: Path, level: str, args: argparse.Namespace, seed: int) -> tuple[list[float], float]:
    """Post ``args.reports`` reports to a fresh store at ``level``; return the latencies and the seconds."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        store = Store(url)
        store.upgrade()
        store.dispose()
        bodies = _bodies(args.reports, seed)
        with serving(url, level, args.workers) as port, ProcessPoolExecutor(args.clients) as pool:
            _post(port, _bodies(4 * args.workers, seed + 1))  # every worker imported and connected
            started = time.perf_counter()
            parts = list(
                pool.map(_post, [port] * args.clients, [bodies[i :: args.clients] for i in range(args.clients)])
            )
            elapsed = time.perf_counter() - started
    return [t for part in parts for t in part], elapsed


def commit_times(directory: Path, level: str, count: int = 500) -> list[float]:
    """Return the seconds of ``count`` one-row write transactions in WAL mode at ``level``: the sync alone."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        connection = sqlite3.connect(Path(tmp) / "commits.sqlite3", isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={level}")
        connection.execute("CREATE TABLE t (x INTEGER)")
        times = []
        for i in range(count):
            started = time.perf_counter()
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO t VALUES (?)", (i,))
            connection.execute("COMMIT")
            times.append(time.perf_counter() - started)
        connection.close()
    return times


def _percentiles(times: list[float]) -> tuple[float, float]:
    """Return the median and the 95th percentile of ``times``, in milliseconds."""
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per level (alternating)")
    parser.add_argument("--reports", type=int, default=1000, help="reports per round")
    parser.add_argument("--clients", type=int, default=4, help="client processes posting at once")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the database files")
    args = parser.parse_args()
    directory = args.dir or RESULTS
    directory.mkdir(parents=True, exist_ok=True)
    latencies: dict[str, list[float]] = {level: [] for level in SQLITE_SYNCHRONOUS_LEVELS}
    seconds = dict.fromkeys(SQLITE_SYNCHRONOUS_LEVELS, 0.0)
    for round_ in range(args.rounds):
        for level in SQLITE_SYNCHRONOUS_LEVELS if round_ % 2 == 0 else reversed(SQLITE_SYNCHRONOUS_LEVELS):
            times, elapsed = one_round(directory, level, args, seed=round_)
            latencies[level] += times
            seconds[level] += elapsed
            print(f"  round {round_ + 1} {level}: {len(times) / elapsed:.0f} reports/s", file=sys.stderr)
    print(f"\n{args.rounds} rounds x {args.reports} reports, {args.clients} clients, {args.workers} workers")
    print(f"database folder: {directory.resolve()}\n")
    commits = {level: commit_times(directory, level) for level in SQLITE_SYNCHRONOUS_LEVELS}
    print("| synchronous | intake p50 ms | intake p95 ms | reports/s | one commit p50 ms | one commit p95 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for level in SQLITE_SYNCHRONOUS_LEVELS:
        p50, p95 = _percentiles(latencies[level])
        c50, c95 = _percentiles(commits[level])
        rate = len(latencies[level]) / seconds[level]
        print(f"| {level} | {p50:.1f} | {p95:.1f} | {rate:.0f} | {c50:.2f} | {c95:.2f} |")


if __name__ == "__main__":
    main()
