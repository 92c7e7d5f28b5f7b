"""gunicorn's worker for ``mapsvc serve``: its own error answers (400, 414, 431, ...) in JSON.

gunicorn answers a request it cannot parse (a request line over 8 KB, a malformed line or
header) itself, before the app sees it, with an HTML page that repeats what it could not parse.
Here the answer keeps gunicorn's status, and carries a JSON body like the app's errors,
``{"error": ...}``, that repeats nothing of the request. It is JSON on every path: a request
line too long to read has no path that could choose otherwise.
"""

from __future__ import annotations

import json
import re
import socket
from http import HTTPStatus
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

#: What each status gunicorn answers means, said without repeating the request.
MESSAGES = {
    400: "the request is malformed: its request line or a header could not be read",
    403: "the request is forbidden",
    414: "the request line (method, address and query) is too long",
    417: "the expectation in the Expect header cannot be met",
    431: "the request's headers are too many or too large",
    500: "the server encountered an internal error",
    501: "the request's transfer coding is not supported",
}

_STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")


class _Captured:
    """A client socket stand-in that keeps what gunicorn writes to it instead of sending it."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.sent = bytearray()

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def gettimeout(self) -> float:
        return 0.0  # so that gunicorn does not switch the real socket's blocking mode

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def json_error(status: int) -> bytes:
    """Return the whole HTTP answer of an error gunicorn answers itself, with a JSON body."""
    body = json.dumps({"error": MESSAGES.get(status, "the request could not be handled")}).encode()
    head = (
        f"HTTP/1.1 {status} {_reason(status)}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class JsonErrorWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, answering the errors gunicorn handles itself in JSON."""

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """Let gunicorn choose the status and log as it does, then send that status with a JSON body."""
        captured = _Captured(client)
        super().handle_error(req, captured, addr, exc)
        found = _STATUS_LINE.match(bytes(captured.sent))
        answer = json_error(int(found.group(1))) if found else bytes(captured.sent)
        try:
            util.write_nonblock(client, answer)
        except Exception:  # the client may be gone; gunicorn ignores this too
            self.log.debug("Failed to send error message.")
