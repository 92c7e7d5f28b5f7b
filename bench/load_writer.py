"""The writer of bench/load.py: reports posted at a fixed rate, each on its own connection, as phones send them.

    python bench/load_writer.py PORT RATE SECONDS WEST SOUTH EAST NORTH

It prints one JSON list, an entry per report: its status (0: no answer), its latency in ms from
the moment it was due (so a writer held up by a slow server counts the wait too), and the report
id of a 201. It imports nothing but the standard library and runs in one thread over
non-blocking sockets, its requests made beforehand: on a 2-core machine, the writer's own CPU is
taken from the server it measures (a thread per report with http.client, in a process that had
imported the service, took 5 % of the machine, a third of what the reports cost the service).
"""

from __future__ import annotations

import json
import random
import selectors
import socket
import sys
import time
from dataclasses import dataclass, field

#: The categories the writer reports, as peers would in a raid.
CATEGORIES = ("checkpoint", "raid", "patrol", "extortion", "attack")
#: A report unanswered for this long counts as an error, in seconds.
TIMEOUT_S = 30


def write(port: int, rate: float, seconds: float, bounds: tuple[float, float, float, float]) -> None:
    """Post reports at a fixed rate, each on its own connection (as phones do); print every answer as JSON."""
    rng = random.Random(7)
    west, south, east, north = bounds
    count = int(rate * seconds)
    requests = []
    for _ in range(count):
        body = json.dumps(
            {"category": rng.choice(CATEGORIES), "lat": rng.uniform(south, north), "lon": rng.uniform(west, east)}
        ).encode()
        head = (
            f"POST /api/reports HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        requests.append(head.encode() + body)
    answers: list[dict[str, object]] = []
    selector = selectors.DefaultSelector()

    def finish(sock: socket.socket, sending: _Sending, status: int, report_id: object) -> None:
        selector.unregister(sock)
        sock.close()
        answers.append({"status": status, "ms": (time.monotonic() - sending.due) * 1000, "id": report_id})

    started, sent = time.monotonic(), 0
    while sent < count or selector.get_map():
        while sent < count and started + sent / rate <= time.monotonic():
            due = started + sent / rate
            sent += 1
            try:
                sock = socket.socket()
            except OSError:  # out of descriptors: a server that answers nothing for long
                answers.append({"status": 0, "ms": (time.monotonic() - due) * 1000, "id": None})
                continue
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))  # under way: writable once connected
            selector.register(sock, selectors.EVENT_WRITE, _Sending(due, requests[sent - 1]))
        wait = max(0.0, started + sent / rate - time.monotonic()) if sent < count else 0.5
        for key, events in selector.select(wait):
            conn, sending = key.fileobj, key.data
            assert isinstance(conn, socket.socket)
            try:
                if events & selectors.EVENT_WRITE:
                    sending.out = sending.out[conn.send(sending.out) :]
                    if not sending.out:
                        selector.modify(conn, selectors.EVENT_READ, sending)
                elif chunk := conn.recv(65536):
                    sending.answer += chunk
                else:  # the server closed: the whole answer is here
                    finish(conn, sending, *_status_and_id(bytes(sending.answer)))
            except OSError:
                finish(conn, sending, 0, None)  # counted as an error (status 0)
        for key in list(selector.get_map().values()):
            if time.monotonic() - key.data.due > TIMEOUT_S:
                finish(key.fileobj, key.data, 0, None)  # type: ignore[arg-type]
    print(json.dumps(answers))


@dataclass
class _Sending:
    """A report on its way: when it was due, what is still to send, what has come back."""

    due: float
    out: bytes
    answer: bytearray = field(default_factory=bytearray)


def _status_and_id(answer: bytes) -> tuple[int, object]:
    """Return the status of an HTTP answer, and the report id of a 201's JSON body (else None)."""
    head, _, body = answer.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
        return status, json.loads(body).get("id") if status == 201 else None
    except (IndexError, ValueError, AttributeError):  # no status line, or a 201 without a JSON object
        return 0, None


def main() -> None:
    port, rate, seconds, *bounds = sys.argv[1:]
    west, south, east, north = map(float, bounds)
    write(int(port), float(rate), float(seconds), (west, south, east, north))


if __name__ == "__main__":
    main()
