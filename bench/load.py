"""Load benchmark: do the map's reads stay fast while a city reports, and does intake wait behind reads?

For each engine it builds the demo data (``mapsvc demo``: 5,000 reports over 30 days, as
scripts/demo.sh), starts a real ``mapsvc serve`` (2 workers, ``--threads`` as given or the
command's default) with its limits in Redis, and runs from separate processes on loopback:

- **reads**: ``wrk`` with 200 connections asking, for ``--seconds``, the URL the map page asks
  every minute (``/api/layers`` of the whole city with the map's event limit, static/js/map.js);
- **writes** (second run only): reports posted at a fixed rate (50 a second) from a writer (bench/load_writer.py)
  process, one connection each, each report's latency measured from the moment it was due.

Then it checks that every report answered 201 is in the database, and prints the table. The
targets (issue 13): with writes, reads keep at least 80 % of their throughput and a p95 within
1.5 times that of the run without; intake p95 at most 300 ms; no errors; every 201 stored.

All of the bench's clients share one address (127.0.0.1), so its server takes a raised intake
limit, a raised anonymous read limit and a raised burst hold (``BENCH_SETTINGS``): as many phones
on many addresses would be, every report is published and none is refused.

    .venv/bin/python bench/load.py --engines sqlite postgis
    .venv/bin/python bench/load.py --source /tmp/mapsvc-old   # another checkout's code, same bench

PostGIS: a database ``mapsvc_bench_load`` made from --postgres-url's (which holds the postgis
extension: scripts/postgis.sh makes one) and dropped afterwards. Redis: --redis-url, keys under
a prefix of this run's own, deleted afterwards. Needs ``wrk`` (Debian package ``wrk``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from sqlalchemy import bindparam, create_engine, make_url, select, text
from sqlalchemy.exc import OperationalError

from mapsvc.core.area import ServiceArea
from mapsvc.store.models import Report

POSTGRES_URL = "postgresql+psycopg://mapsvc_test@127.0.0.1:5432/mapsvc_test"
REDIS_URL = "redis://127.0.0.1:6379/14"
DATABASE = "mapsvc_bench_load"
#: What the bench's server is given besides its database and Redis: one address sends everything.
BENCH_SETTINGS = {
    "INTAKE_RATE_LIMIT": "1000000 per minute",
    "READ_RATE_LIMIT": "100000000 per minute",
    "BURST_HOLD": "1000000 per hour",
}
#: wrk prints this line at the end (p50 and p95 in microseconds): its own summary has no p95.
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(95),
    latency.max))
end
"""


def _cpu_s(pid: int) -> float:
    """Return the CPU seconds (user and system) that process ``pid`` and its descendants have used, 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = [
            int(child)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
    except (OSError, IndexError, ValueError):
        return 0.0
    return own + sum(_cpu_s(child) for child in children)


def _machine_busy_s() -> float:
    """Return the CPU seconds the whole machine has spent busy (not idle, not waiting for disks) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _clients_cpu_s() -> float:
    """Return the CPU seconds that this process's finished children (wrk, the writer) have used."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _postmaster(db_url: str) -> int | None:
    """Return the process id of the PostgreSQL server behind ``db_url`` if it runs on this machine."""
    if not db_url.startswith("postgresql"):
        return None
    engine = create_engine(db_url)
    with engine.connect() as c:
        backend = int(c.execute(text("SELECT pg_backend_pid()")).scalar_one())
    engine.dispose()
    try:
        return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _times(service: int, postmaster: int | None) -> tuple[float, ...]:
    """Return the clock and the CPU seconds used so far: by the service, its database, the clients, the machine."""
    database = _cpu_s(postmaster) if postmaster else 0.0
    return time.monotonic(), _cpu_s(service), database, _clients_cpu_s(), _machine_busy_s()


@dataclass
class Cpu:
    """Share of the machine's CPU time used during a run (in %): by the service, its database, the clients, all."""

    service: float
    database: float
    clients: float
    busy: float


@dataclass
class Reads:
    """What wrk measured: requests a second, latency percentiles in ms, errors."""

    rate: float
    p50_ms: float
    p95_ms: float
    errors: int


@dataclass
class Writes:
    """What the writer measured: latency percentiles in ms, errors, ids of the 201s, reports sent."""

    p50_ms: float
    p95_ms: float
    errors: int
    ids: list[str]
    sent: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: The ``mapsvc`` command of any version of the code: its app's commands, as the console script makes them.
_MAIN = (
    "import os; from flask.cli import FlaskGroup; from mapsvc import create_app; "
    "os.environ.setdefault('FLASK_APP', 'mapsvc'); "
    "FlaskGroup(create_app=lambda *a: create_app(), add_default_commands=False, add_version_option=False)"
    "(prog_name='mapsvc')"
)


def _mapsvc(env: dict[str, str], *args: str, **kwargs: object) -> subprocess.Popen[bytes]:
    """Start the ``mapsvc`` command of the code on ``env``'s PYTHONPATH (the bench's own by default).

    It runs in the filesystem's root: ``python -c`` looks for modules in its working directory
    first, where a checkout's own ``mapsvc`` would win over the code asked for. The command group
    is made here from ``create_app``, which every version has, wherever its console script lives.
    """
    command = [sys.executable, "-c", _MAIN, *args]
    return subprocess.Popen(command, env=env, cwd="/", **kwargs)  # type: ignore[call-overload, no-any-return]


@contextmanager
def database(engine: str, scratch: Path, postgres_url: str) -> Iterator[str]:
    """Yield the URL of a new empty database of ``engine``; a PostGIS one is dropped afterwards."""
    if engine == "sqlite":
        yield f"sqlite:///{scratch / 'mapsvc.sqlite3'}"
        return
    admin = create_engine(make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    base = make_url(postgres_url).database
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        for attempt in range(20):  # the test suite may be copying the base database at this moment
            try:
                c.execute(text(f'CREATE DATABASE "{DATABASE}" TEMPLATE "{base}"'))
                break
            except OperationalError:
                if attempt == 19:
                    raise
                time.sleep(0.5)
    try:
        yield make_url(postgres_url).set(database=DATABASE).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        admin.dispose()


def prepare(env: dict[str, str], reports: int) -> None:
    """Migrate the database and add the demo data, as scripts/demo.sh does; say which code runs."""
    where = [sys.executable, "-c", "import mapsvc; print(mapsvc.__file__)"]
    print(f"  code: {subprocess.check_output(where, env=env, cwd='/', text=True).strip()}", file=sys.stderr)
    for args in (("db", "upgrade"), ("demo", "--reports", str(reports), "--days", "30", "--seed", "13")):
        if _mapsvc(env, *args, stdout=subprocess.DEVNULL).wait() != 0:
            raise RuntimeError(f"mapsvc {' '.join(args)} failed")


@contextmanager
def serving(env: dict[str, str], threads: int | None) -> Iterator[tuple[int, int]]:
    """Run ``mapsvc serve`` with two workers on a free loopback port; yield the port and its pid once it answers."""
    port = _free_port()
    args = ["serve", "--port", str(port), "--workers", "2", *(["--threads", str(threads)] if threads else [])]
    server = _mapsvc(env, *args, stdout=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if server.poll() is not None:
                raise RuntimeError("mapsvc serve stopped")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/api/health")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield port, server.pid
    finally:
        server.terminate()
        server.wait(30)


def read_url(env: dict[str, str]) -> str:
    """Return the path and query the map page asks every minute: the whole city, the map's event limit."""
    area = ServiceArea.from_config(json.loads(env.get("MAPSVC_SERVICE_AREA", '"bishkek"')))
    west, south, east, north = area.bounds
    pad_x, pad_y = (east - west) * 0.1, (north - south) * 0.1  # Leaflet's bounds.pad(0.1)
    bbox = ",".join(f"{v:.3f}" for v in (west - pad_x, south - pad_y, east + pad_x, north + pad_y))
    return f"/api/layers?bbox={bbox}&limit=400"


def read_load(port: int, path: str, seconds: float, readers: int) -> subprocess.Popen[str]:
    """Start wrk: ``readers`` connections asking ``path`` for ``seconds``."""
    script = Path(tempfile.mkdtemp()) / "p95.lua"
    script.write_text(WRK_SCRIPT)
    command = ["wrk", "-t2", f"-c{readers}", f"-d{round(seconds)}s", "--timeout", "10s", "-s", str(script)]
    return subprocess.Popen([*command, f"http://127.0.0.1:{port}{path}"], stdout=subprocess.PIPE, text=True)


def read_result(wrk: subprocess.Popen[str]) -> Reads:
    """Wait for wrk and return what it measured."""
    out, _ = wrk.communicate()
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    requests, duration_us, socket_errors, status_errors, timeouts, p50, p95, _max = map(int, line.split()[1:])
    return Reads(requests / (duration_us / 1e6), p50 / 1000, p95 / 1000, socket_errors + status_errors + timeouts)


def write_load(port: int, rate: float, seconds: float) -> subprocess.Popen[str]:
    """Start the writer process (bench/load_writer.py): reports at ``rate`` a second for ``seconds``, in the city."""
    bounds = [str(v) for v in ServiceArea.from_config("bishkek").bounds]
    command = [
        sys.executable,
        str(Path(__file__).with_name("load_writer.py")),
        str(port),
        str(rate),
        str(seconds),
        *bounds,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ""})


def write_result(writer: subprocess.Popen[str]) -> Writes:
    """Wait for the writer and return what it measured."""
    out, _ = writer.communicate()
    answers = json.loads(out)
    times = sorted(a["ms"] for a in answers)
    return Writes(
        p50_ms=statistics.median(times),
        p95_ms=times[int(0.95 * (len(times) - 1))],
        errors=sum(a["status"] != 201 for a in answers),
        ids=[a["id"] for a in answers if a["status"] == 201],
        sent=len(answers),
    )


def stored(db_url: str, ids: list[str]) -> int:
    """Return how many of the report ids ``ids`` the database holds."""
    engine = create_engine(db_url)
    query = select(Report.public_id).where(Report.public_id.in_(bindparam("ids", expanding=True)))
    found = 0
    with engine.connect() as c:
        for i in range(0, len(ids), 500):
            found += len(c.execute(query, {"ids": ids[i : i + 500]}).all())
    engine.dispose()
    return found


Row = tuple[str, float, Reads, Writes | None, int, Cpu]


def run_engine(engine: str, args: argparse.Namespace) -> list[Row]:
    """Measure one engine without and with writes; return the table's rows."""
    tag = f"mapsvc-bench-load-{os.getpid()}"
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as scratch, database(engine, Path(scratch), args.postgres_url) as db_url:
        env = {
            **os.environ,
            "PYTHONPATH": str(args.source),
            "MAPSVC_DATABASE_URL": db_url,
            "MAPSVC_RATELIMIT_STORAGE_URI": args.redis_url,
            "MAPSVC_RATELIMIT_KEY_PREFIX": tag,
            **{f"MAPSVC_{k}": v for k, v in BENCH_SETTINGS.items()},
        }
        prepare(env, args.reports)
        path = read_url(env)
        postmaster = _postmaster(db_url)
        with serving(env, args.threads) as (port, pid):
            read_result(read_load(port, path, 3, args.readers))  # warm-up: every worker imported and connected
            for rate in (0, args.rate):
                before = _times(pid, postmaster)
                wrk = read_load(port, path, args.seconds, args.readers)
                writes = write_result(write_load(port, rate, args.seconds)) if rate else None
                reads = read_result(wrk)
                after = _times(pid, postmaster)
                machine = (after[0] - before[0]) * (os.cpu_count() or 1) / 100  # CPU seconds in 1 %
                cpu = Cpu(*((a - b) / machine for a, b in zip(after[1:], before[1:], strict=True)))
                found = stored(db_url, writes.ids) if writes else 0
                rows.append((engine, rate, reads, writes, found, cpu))
                print(f"  {engine}, {rate} reports/s: done", file=sys.stderr)
                time.sleep(2)
    server = redis.Redis.from_url(args.redis_url)
    for key in server.scan_iter(f"*{tag}*"):
        server.delete(key)
    return rows


def print_table(rows: list[Row]) -> None:
    """Print the measurements as a Markdown table (CPU: shares of the whole machine's time in the run)."""
    print(
        "| engine | writes/s | reads req/s | reads p50 ms | reads p95 ms | read errors "
        "| intake p50 ms | intake p95 ms | intake errors | 201s found/sent | CPU % service/db/clients/all |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for engine, rate, reads, writes, found, cpu in rows:
        cells = [
            engine,
            f"{rate:g}",
            f"{reads.rate:.0f}",
            f"{reads.p50_ms:.1f}",
            f"{reads.p95_ms:.1f}",
            f"{reads.errors}",
        ]
        if writes is None:
            cells += ["", "", "", ""]
        else:
            cells += [f"{writes.p50_ms:.0f}", f"{writes.p95_ms:.0f}", f"{writes.errors}", f"{found}/{len(writes.ids)}"]
        cells.append(f"{cpu.service:.0f}/{cpu.database:.0f}/{cpu.clients:.0f}/{cpu.busy:.0f}")
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", nargs="+", choices=["sqlite", "postgis"], default=["sqlite", "postgis"])
    parser.add_argument("--seconds", type=int, default=20, help="length of each measured run")
    parser.add_argument("--readers", type=int, default=200, help="wrk's connections")
    parser.add_argument("--rate", type=float, default=50, help="reports a second in the run with writes")
    parser.add_argument("--threads", type=int, default=None, help="gunicorn threads per worker (default: serve's)")
    parser.add_argument("--reports", type=int, default=5000, help="demo reports to start with")
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="server and base database (with postgis)")
    parser.add_argument("--redis-url", default=REDIS_URL, help="the Redis the server's limits live in")
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parent.parent, help="the code to run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk (scripts/setup.sh installs it)")
    rows = [row for engine in args.engines for row in run_engine(engine, args)]
    print_table(rows)


if __name__ == "__main__":
    main()
