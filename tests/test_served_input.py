"""Bad requests to a real ``mapsvc serve``: what gunicorn answers itself is JSON, and chunked bodies keep the limit.

gunicorn refuses a request it cannot parse (a request line over its limit, a malformed line or
header) before the app sees it; werkzeug cuts a chunked body at ``MAX_CONTENT_LENGTH`` without
saying so. Both only show over a real connection.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import BISHKEK
from tests.servers import serving

REPORT = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]}


@pytest.fixture(scope="module")
def port(migrated_template, tmp_path_factory) -> Iterator[int]:
    directory = tmp_path_factory.mktemp("served-input")
    url = migrated_template.fresh(directory)
    with serving(url, directory / "server.log", INTAKE_ANSWER_MS="0") as port:
        yield port
    migrated_template.drop(url)


def _raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; return the status, the headers and the body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /api/layers?bbox=" + b"1" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /ogc/collections HTTP/1.1 and more\r\nHost: x\r\n\r\n", 400),
        (b"GET /api/layers HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),
        (b"GET /api/layers HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n", 431),
    ],
    ids=["request line too long", "malformed request line", "malformed header", "too many headers"],
)
def test_what_gunicorn_refuses_is_answered_in_json(port, request_bytes, status):
    answered, headers, body = _raw(port, request_bytes)

    assert answered == status
    assert headers["content-type"] == "application/json"
    message = json.loads(body)["error"]
    assert message and "1111" not in message and "Bad Header" not in message and "and more" not in message


def _chunked(port: int, body: bytes) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        pieces = (body[i : i + 4096] for i in range(0, len(body), 4096))
        connection.request("POST", "/api/reports", pieces, {"Content-Type": "application/json"}, encode_chunked=True)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_chunked_body_over_the_limit_is_413(port):
    body = json.dumps({**REPORT, "details": "x" * 17_000}).encode()

    status, answer = _chunked(port, body)

    assert status == 413
    assert answer == {"error": "the request body is too large"}


def test_chunked_body_within_the_limit_is_read(port):
    assert _chunked(port, json.dumps(REPORT).encode())[0] == 201
