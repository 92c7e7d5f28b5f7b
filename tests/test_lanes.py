"""The write lane of ``mapsvc serve``: a report is answered while every read thread is busy."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

from mapsvc.server.lanes import changes_something, request_start
from tests.conftest import BISHKEK
from tests.servers import serving


@pytest.mark.parametrize(
    ("start", "write"),
    [
        (b"POST /api/reports HTTP/1.1\r\n", True),
        (b"POST /report HTTP/1.1\r\n", True),
        (b"DELETE /api/reports/abc HTTP/1.1\r\n", True),
        (b"PUT /x HTTP/1.1\r\n", True),
        (b"PATCH /x HTTP/1.1\r\n", True),
        (b"GET /api/layers HTTP/1.1\r\n", False),
        (b"HEAD / HTTP/1.1\r\n", False),
        (b"OPTIONS * HTTP/1.1\r\n", False),
        (b"GET /POST HTTP/1.1\r\n", False),
    ],
)
def test_requests_that_change_something_are_told_from_reads_without_consuming_them(start, write):
    server, client = socket.socketpair()
    with server, client:
        client.sendall(start)
        time.sleep(0.01)

        assert changes_something(request_start(server)) is write
        assert server.recv(100) == start


def test_a_connection_whose_request_has_not_come_yet_is_told_apart():
    server, client = socket.socketpair()
    with server, client:
        assert request_start(server) is None


def test_a_closed_connection_starts_with_nothing():
    server, client = socket.socketpair()
    with server:
        client.close()
        assert request_start(server) == b""


def _busy_read(port: int) -> socket.socket:
    """Return a kept-alive connection whose second request never ends: it holds a read thread."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(b"GET /api/health HTTP/1.1\r\nHost: mapsvc\r\n\r\n")
    answer = b""
    while b'"ok"}' not in answer:
        answer += connection.recv(4096)
    connection.sendall(b"GET /api/layers HTTP/1.1\r\nHost: mapsvc\r\n")  # no blank line: the headers go on
    return connection


@pytest.mark.engines("sqlite")
def test_a_report_is_answered_while_every_read_thread_is_busy(migrated_template, tmp_path):
    url = migrated_template.fresh(tmp_path)
    body = json.dumps({"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]})
    args = (
        "--threads",
        "1",
        "--write-threads",
        "2",
        "--no-intake-worker",
    )  # the lane of a worker that takes reports itself
    with serving(url, tmp_path / "server.log", args=args) as port:
        busy = _busy_read(port)
        time.sleep(0.5)  # the read thread has it, and waits for the rest of its headers
        report = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        report.request("POST", "/api/reports", body, {"Content-Type": "application/json"})
        status = report.getresponse().status
        report.close()
        busy.close()

    assert status == 201


@pytest.mark.engines("sqlite")
def test_connections_that_have_sent_nothing_yet_hold_no_thread(migrated_template, tmp_path):
    """Idle new connections wait in the poller: before, each held a thread (of the write lane) for 5 s."""
    url = migrated_template.fresh(tmp_path)
    body = json.dumps({"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]})
    args = ("--threads", "1", "--write-threads", "1", "--no-intake-worker")
    with serving(url, tmp_path / "server.log", args=args) as port:
        quiet = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
        time.sleep(0.5)  # accepted, and waiting for their first bytes
        report = http.client.HTTPConnection("127.0.0.1", port, timeout=3)  # less than the 5 s a thread would wait
        report.request("POST", "/api/reports", body, {"Content-Type": "application/json"})
        reported = report.getresponse().status
        report.close()
        read = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        read.request("GET", "/api/health")
        health = read.getresponse().status
        read.close()
        late = quiet[0]  # one of them sends its request at last, and is answered
        late.sendall(b"GET /api/health HTTP/1.1\r\nHost: mapsvc\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := late.recv(4096):
            answer += chunk
        for connection in quiet:
            connection.close()

    assert (reported, health) == (201, 200)
    assert answer.startswith(b"HTTP/1.1 200")
