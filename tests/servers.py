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
def serving(database_url: str, log: Path, workers: int = 1, **settings: str) -> Iterator[int]:
    """Run ``mapsvc serve`` on ``database_url``; yield its port once ``/api/health`` answers 200.

    Every test's reports come from one address: rate limits (tested elsewhere) are off unless
    ``settings`` (``MAPSVC_*`` names without the prefix) say otherwise. The server's log is
    printed on the way out, where pytest shows it for a failed test.
    """
    port = free_port()
    env = {**os.environ, "MAPSVC_DATABASE_URL": database_url, "MAPSVC_RATELIMIT_ENABLED": "false"}
    env.update({f"MAPSVC_{name}": value for name, value in settings.items()})
    command = [str(MAPSVC), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with log.open("w") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if request(port, "GET", "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not become healthy within 60 s"
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(30)
        print(log.read_text())
