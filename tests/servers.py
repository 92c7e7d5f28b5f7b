"""A real ``mapsvc serve`` for tests that need HTTP over loopback (concurrency, GDAL's client)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MAPSVC = Path(sys.executable).parent / "mapsvc"


def request(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Send one request (a JSON body if given) and return the status and the decoded JSON answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, None if body is None else json.dumps(body), headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def free_port() -> int:
    """Return a loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(
    database_url: str, log: Path, workers: int = 1, args: tuple[str, ...] = (), **settings: str
) -> Iterator[int]:
    """Run ``mapsvc serve`` on ``database_url``; yield its port once ``/api/health`` answers 200.

    ``args``: more options of the command (``--threads``, ...).

    Every test's reports come from one address: rate limits (tested elsewhere) are off unless
    ``settings`` (``MAPSVC_*`` names without the prefix) say otherwise. The server's log is
    printed on the way out, where pytest shows it for a failed test.
    """
    process, port = start(database_url, log, workers, args=args, **settings)
    try:
        yield port
    finally:
        _stop(process, log)


def start(
    database_url: str,
    log: Path,
    workers: int = 1,
    own_group: bool = False,
    args: tuple[str, ...] = (),
    **settings: str,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``mapsvc serve`` (see :func:`serving`); return the process and port once it is healthy.

    ``own_group``: in a process group of its own, so that ``os.killpg`` reaches its workers too.

    The port is free when chosen, but another process (a test on the other xdist worker) may
    bind it before the server does: then gunicorn cannot listen, and a health check could reach
    that other process. So the server counts as up only once its own log says it listens on the
    port, and a server that lost its port is started again on another. The caller stops it.
    """
    env = {**os.environ, "MAPSVC_DATABASE_URL": database_url, "MAPSVC_RATELIMIT_ENABLED": "false"}
    env.update({f"MAPSVC_{name}": value for name, value in settings.items()})
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        command = [str(MAPSVC), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), *args]
        with log.open("w") as stderr:
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=own_group
            )
        try:
            if _healthy(process, port, log):
                return process, port
        except BaseException:
            _stop(process, log)
            raise
        _stop(process, log)
    raise AssertionError(f"the server lost its port {PORT_ATTEMPTS} times in a row")


#: Settings for ``serving(workers=N)`` without Redis: the budgets of wrong passwords are off too (rate
#: limits already are), since each worker would count them apart and ``mapsvc serve`` refuses that.
NO_PER_WORKER_COUNTS = {
    "LOGIN_FAILURE_LIMIT": '""',
    "LOGIN_ACCOUNT_FAILURE_LIMIT": '""',
    "LOGIN_KNOWN_DEVICE_FAILURE_LIMIT": '""',
    "CONFIRM_FAILURE_LIMIT": '""',
}

#: How many ports ``serving`` tries; each is lost with a chance of about 1e-4 at most.
PORT_ATTEMPTS = 3


def _healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    """Wait until the server listens on ``port`` and answers; False if another process had the port."""
    # gunicorn's line, "Listening at: http://[addr]:PORT (PID)" (the app's log filter hides the host).
    listening = f":{port} ({process.pid})"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            text = log.read_text()
            if "Connection in use" in text:
                return False
            raise AssertionError(text)
        if any("Listening at: " in line and line.endswith(listening) for line in log.read_text().splitlines()):
            try:
                if request(port, "GET", "/api/health")[0] == 200:
                    return True
            except OSError:
                pass
        assert time.monotonic() < deadline, "the server did not become healthy within 60 s"
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    """Stop a server made by :func:`start` (if it still runs) and print its log."""
    _stop(process, log)


def _stop(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(30)
    print(log.read_text())


def keep_clear_of_the_hours_end(margin_s: float = 20) -> None:
    """Wait for the next hour if this one ends within ``margin_s``.

    A server in another process counts its limits in the clock's windows (the tests' pinned
    clock does not reach it): a test that expects the (N+1)th request refused must not straddle
    a window's end. The day's key changes at midnight UTC, which is an hour's end too.
    """
    left = 3600 - time.time() % 3600
    if left < margin_s:
        time.sleep(left + 0.5)
