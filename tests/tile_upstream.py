"""A fake tile server on loopback for the tile proxy's tests."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def png(size: int = 72) -> bytes:
    """Return a PNG-signed body of ``size`` bytes (the proxy checks the signature only)."""
    return b"\x89PNG\r\n\x1a\n" + b"\x00" * (size - 8)


class Upstream:
    """Answers each path with its status (200 by default); records the paths and the headers sent."""

    def __init__(self, body: bytes = png(), delay_s: float = 0.0, port: int = 0) -> None:
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.delay_s = delay_s
        self.statuses: dict[str, int] = {}
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.requests.append(self.path)
                upstream.headers.append(dict(self.headers))
                time.sleep(upstream.delay_s)  # a slow tile server: requests for one tile overlap
                status = upstream.statuses.get(self.path, 200)
                self.send_response(status)
                self.send_header("Content-Type", "image/png" if status == 200 else "text/plain")
                self.end_headers()
                self.wfile.write(body if status == 200 else b"no")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)  # port 0: any free one
        self.url = f"http://127.0.0.1:{self.server.server_port}/{{z}}/{{x}}/{{y}}.png"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
