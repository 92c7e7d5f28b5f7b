"""A small HTTP proxy on loopback that stands between a browser and the service, and fails as told.

Modes, for requests under ``/api/`` (pages and scripts always pass, so the page loads):

- ``pass``: forward the request and relay the service's answer;
- ``503``, ``429``: answer so without asking the service, with ``Retry-After`` if set;
- ``502``: answer as a proxy does while the service restarts (an HTML page);
- ``reset``: reset the connection before answering (TCP RST);
- ``lost``: forward a report (the service stores it), then reset the connection: the answer is lost.

Every ``POST /api/reports`` is recorded with the moment it came and its ``Idempotency-Key``.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("pass", "503", "429", "502", "reset", "lost")
#: Headers that belong to one connection, not to the message.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass(frozen=True)
class Try:
    """One ``POST /api/reports`` that reached the proxy: when, with which key, and what the mode was."""

    at: float
    key: str | None
    mode: str


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *_: Any) -> None:
        """Keep the test output quiet."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        mode = proxy.mode if self.path.startswith("/api/") else "pass"
        if self.command == "POST" and self.path.split("?")[0] == "/api/reports":
            proxy.record(Try(time.monotonic(), self.headers.get("Idempotency-Key"), mode))
        elif mode == "lost":
            mode = "pass"
        if mode == "reset":
            self._reset()
        elif mode in ("503", "429"):
            error = {"error": "the database is unreachable; try again shortly"}
            headers = {} if proxy.retry_after is None else {"Retry-After": str(proxy.retry_after)}
            self._answer(int(mode), json.dumps(error).encode(), "application/json", headers)
        elif mode == "502":
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            self._answer(502, page, "text/html", {})
        else:
            status, headers, data = self._forward(body)
            if mode == "lost":
                self._reset()
            else:
                self._relay(status, headers, data)

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.proxy.upstream_port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(self.command, self.path, body or None, headers)
            response = upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            upstream.close()

    def _relay(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _answer(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        self._relay(status, [("Content-Type", content_type), *headers.items()], data)

    def _reset(self) -> None:
        """Close the connection with a TCP reset, before any byte of an answer."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultyProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A reset connection is the point here, not an error to print."""


class FaultyProxy:
    """The proxy in a thread; set ``mode`` (and ``retry_after``, in seconds) at any time."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode = "pass"
        self.retry_after: int | None = None
        self._tries: list[Try] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def record(self, attempt: Try) -> None:
        """Note one report's try."""
        with self._lock:
            self._tries.append(attempt)

    @property
    def tries(self) -> list[Try]:
        """Return the reports' tries so far, oldest first."""
        with self._lock:
            return list(self._tries)

    def forget_tries(self) -> None:
        """Start counting tries afresh."""
        with self._lock:
            self._tries.clear()

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
