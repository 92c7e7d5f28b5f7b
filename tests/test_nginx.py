"""The shipped nginx configuration in front of a real mapsvc: separate limits, nothing logged.

Debian's nginx runs ``deploy/nginx/mapsvc.conf`` as shipped but for its ports and certificate
paths, inside a main configuration shaped like Debian's (an access log and an error log for the
whole of ``http``, which the shipped servers must override), as the test's user where it can,
with every file it writes under a temporary folder. Clients connect from 127.0.0.2 and 127.0.0.3.
A control server beside it, which keeps Debian's logs, shows that nginx does write its logs here.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from mapsvc import PROJECT_ROOT
from tests.conftest import BISHKEK
from tests.servers import MAPSVC, free_port, keep_clear_of_the_hours_end, serving

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SHIPPED = PROJECT_ROOT / "deploy" / "nginx" / "mapsvc.conf"
FIRST, SECOND = "127.0.0.2", "127.0.0.3"
CONTROL_CLIENT = "127.0.0.4"
CONTROL_PATH = "/nginx-control-probe"
TILE = "/tiles/15/23171/12056.png"  # central Bishkek, in the service area
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64

#: A self-signed certificate for the shipped server name and for the address the clients dial.
OPENSSL_REQ = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=map.example.org"]
SUBJECT_NAMES = ["-addext", "subjectAltName=DNS:map.example.org,IP:127.0.0.1"]

#: nginx's timestamps: the error log's "2026/06/15 22:30:01", the access log's "15/Jun/2026:22:30:01".
STAMP = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d|\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")

MAIN_CONFIG = """
{user}
pid {run}/nginx.pid;
error_log {logs}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {logs}/access.log;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    include {run}/mapsvc.conf;
    server {{
        listen 127.0.0.1:{control};
        client_max_body_size 1k;
        location / {{ return 204; }}
    }}
}}
"""


def shipped_config(http_port: int, https_port: int, upstream: int, certificate: Path, key: Path) -> str:
    """Return the shipped file with only its ports and certificate paths replaced (each exactly once)."""
    text = SHIPPED.read_text()
    for old, new, times in [
        ("listen 80 ", f"listen 127.0.0.1:{http_port} ", 1),
        ("listen 443 ", f"listen 127.0.0.1:{https_port} ", 1),
        ("http://127.0.0.1:8000;", f"http://127.0.0.1:{upstream};", 2),
        ("/etc/letsencrypt/live/map.example.org/fullchain.pem", str(certificate), 1),
        ("/etc/letsencrypt/live/map.example.org/privkey.pem", str(key), 1),
    ]:
        assert text.count(old) == times, old
        text = text.replace(old, new)
    return text


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """Make a self-signed certificate for map.example.org and 127.0.0.1."""
    certificate, key = folder / "cert.pem", folder / "key.pem"
    command = [*OPENSSL_REQ, *SUBJECT_NAMES, "-keyout", str(key), "-out", str(certificate)]
    subprocess.run(command, check=True, capture_output=True)
    return certificate, key


@dataclass
class Nginx:
    """A running nginx: its ports, folders and the TLS context that trusts its certificate."""

    folder: Path
    http_port: int
    https_port: int
    control_port: int
    tls: ssl.SSLContext
    process: subprocess.Popen[bytes] | None = None

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    def send(
        self, source: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> int:
        """Send one request over TLS from the loopback address ``source``; return the status."""
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.https_port, timeout=30, source_address=(source, 0), context=self.tls
        )
        return _status(connection, method, path, body, headers or {})

    def send_plain(self, source: str, port: int, method: str, path: str, body: bytes | None = None) -> int:
        """Send one plain-http request from ``source`` to ``port``; return the status."""
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
        return _status(connection, method, path, body, {})

    def hsts(
        self, source: str, method: str, path: str, body: bytes | None = None, port: int | None = None
    ) -> list[str]:
        """Send one request (over TLS, or plain http to ``port``); return its Strict-Transport-Security headers."""
        if port is None:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.https_port, timeout=30, source_address=(source, 0), context=self.tls
            )
        else:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
        return _exchange(connection, method, path, body, {})[1]


def _status(connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None, headers) -> int:
    return _exchange(connection, method, path, body, headers)[0]


def _exchange(
    connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None, headers
) -> tuple[int, list[str]]:
    """Send one request; return the status and the answer's Strict-Transport-Security headers."""
    try:
        if body is not None:
            headers = {"Content-Type": "application/json", **headers}
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.headers.get_all("Strict-Transport-Security") or []
    finally:
        connection.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def start_nginx(folder: Path, upstream: int) -> Nginx:
    """Start nginx in ``folder`` in front of ``upstream``; try other ports if another process took one."""
    assert os.access(NGINX, os.X_OK), "nginx is not installed: scripts/test.sh installs Debian's"
    certificate, key = make_certificate(folder)
    tls = ssl.create_default_context(cafile=str(certificate))
    run, logs = folder / "run", folder / "logs"
    for attempt in range(3):
        shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)
        run.mkdir()
        logs.mkdir()
        nginx = Nginx(folder, free_port(), free_port(), free_port(), tls)
        (run / "mapsvc.conf").write_text(shipped_config(nginx.http_port, nginx.https_port, upstream, certificate, key))
        # As root, nginx would hand its workers to "nobody"; keep them the test's user.
        user = "user root;" if os.geteuid() == 0 else ""
        main = MAIN_CONFIG.format(user=user, run=run, logs=logs, control=nginx.control_port)
        (run / "nginx.conf").write_text(main)
        command = [NGINX, "-p", str(run), "-c", str(run / "nginx.conf"), "-e", str(logs / "startup.log")]
        with (folder / f"nginx-stderr-{attempt}.txt").open("w") as stderr:
            nginx.process = subprocess.Popen([*command, "-g", "daemon off;"], stdout=stderr, stderr=stderr)
        deadline = time.monotonic() + 20
        ports = (nginx.http_port, nginx.https_port, nginx.control_port)
        while nginx.process.poll() is None and not all(_accepts(p) for p in ports):
            assert time.monotonic() < deadline, "nginx did not listen within 20 s"
            time.sleep(0.1)
        if nginx.process.poll() is None:
            return nginx
        said = (folder / f"nginx-stderr-{attempt}.txt").read_text() + (logs / "startup.log").read_text()
        assert "Address already in use" in said, said
    raise AssertionError("nginx lost its ports 3 times in a row")


def stop_nginx(nginx: Nginx) -> None:
    """Stop nginx (fast shutdown) and wait for it."""
    if nginx.process is not None and nginx.process.poll() is None:
        nginx.process.terminate()
        nginx.process.wait(30)


def invitation_code(database: str) -> str:
    """Make an invitation with the CLI and return its code."""
    done = subprocess.run(
        [str(MAPSVC), "admin", "invite", "--role", "peer", "--days", "7"],
        env={**os.environ, "MAPSVC_DATABASE_URL": database},
        capture_output=True,
        text=True,
    )
    found = re.search(r"code: (\S+)", done.stdout)
    assert done.returncode == 0 and found, done.stdout + done.stderr
    return found.group(1)


REPORT = json.dumps({"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1], "fuzzed_on_device": True})


@dataclass
class Through:
    """What nginx answered, and every file it and mapsvc wrote, after the traffic below."""

    statuses: dict[str, list[int]]
    hsts: dict[str, list[str]]
    nginx_logs: dict[str, str]
    nginx_files: list[str]
    mapsvc_log: str
    window: tuple[float, float]
    code: str


def _hsts(nginx: Nginx, mapsvc: int) -> dict[str, list[str]]:
    """Return the Strict-Transport-Security headers of answers over https, over http, and from mapsvc itself."""
    return {
        "https": nginx.hsts(SECOND, "GET", TILE),
        "nginx's own error": nginx.hsts(SECOND, "POST", "/api/reports", b"{" + b" " * 20_000 + b"}"),
        "plain http": nginx.hsts(SECOND, "GET", TILE, port=nginx.http_port),
        # gunicorn takes the scheme from 127.0.0.1's X-Forwarded-Proto, as nginx sends it.
        "mapsvc told https": _exchange(
            http.client.HTTPConnection("127.0.0.1", mapsvc, timeout=30),
            "GET",
            TILE,
            None,
            {"X-Forwarded-Proto": "https"},
        )[1],
        "mapsvc over http": _exchange(
            http.client.HTTPConnection("127.0.0.1", mapsvc, timeout=30), "GET", TILE, None, {}
        )[1],
    }


def _traffic(nginx: Nginx, code: str) -> dict[str, list[int]]:
    """Send the test's requests; return each kind's statuses."""
    report = REPORT.encode()
    return {
        "first": [nginx.send(FIRST, "POST", "/api/reports", report) for _ in range(4)],
        "second": [nginx.send(SECOND, "POST", "/api/reports", report)],
        # Each sends an X-Forwarded-For of its own: a stranger's (a fresh count) or the other's.
        "first as a stranger": [nginx.send(FIRST, "POST", "/api/reports", report, {"X-Forwarded-For": "198.51.100.9"})],
        "second as first": [nginx.send(SECOND, "POST", "/api/reports", report, {"X-Forwarded-For": FIRST})],
        "tile": [nginx.send(FIRST, "GET", TILE)],
        "invitation": [nginx.send(SECOND, "GET", f"/invite/{code}")],
        "plain http": [nginx.send_plain(FIRST, nginx.http_port, "GET", f"/invite/{code}")],
        "too large": [nginx.send(FIRST, "POST", "/api/reports", b"{" + b" " * 20_000 + b"}")],
        "plain http to the https port": [nginx.send_plain(SECOND, nginx.https_port, "GET", TILE)],
    }


@pytest.fixture(scope="module")
def through(migrated_template, tmp_path_factory) -> Iterator[Through]:
    """Run mapsvc behind the shipped nginx, send the traffic, stop mapsvc, send one more, stop nginx."""
    folder = tmp_path_factory.mktemp("nginx")
    database = migrated_template.fresh(folder)
    code = invitation_code(database)
    tile = folder / "tiles" / TILE.removeprefix("/tiles/")
    tile.parent.mkdir(parents=True)
    tile.write_bytes(PNG)
    settings = {
        "TRUSTED_PROXIES": "1",
        "RATELIMIT_ENABLED": "true",
        "INTAKE_RATE_LIMIT": "3 per hour",
        "TILE_URL": "http://127.0.0.1:9/{z}/{x}/{y}.png",
        "TILE_CACHE_DIR": str(tile.parents[2]),
    }
    nginx = None
    try:
        with serving(database, folder / "mapsvc.log", **settings) as upstream:
            nginx = start_nginx(folder, upstream)
            control = [
                nginx.send_plain(CONTROL_CLIENT, nginx.control_port, "GET", CONTROL_PATH),
                nginx.send_plain(CONTROL_CLIENT, nginx.control_port, "POST", CONTROL_PATH, b"x" * 2048),
            ]
            keep_clear_of_the_hours_end()
            time.sleep(1.1)  # mapsvc's start-up lines carry earlier seconds than any request
            started = time.time()
            statuses = {"control": control, **_traffic(nginx, code)}
            hsts = _hsts(nginx, upstream)
            ended = time.time()
            time.sleep(1.1)  # and its shutdown lines later ones
        statuses["mapsvc down"] = [nginx.send(FIRST, "GET", TILE)]
        hsts["mapsvc down"] = nginx.hsts(FIRST, "GET", TILE)
        stop_nginx(nginx)
        logs = {p.name: p.read_text() for p in sorted(nginx.logs.iterdir())}
        files = [str(p.relative_to(folder)) for p in (folder / "run").rglob("*") if p.is_file()]
        yield Through(statuses, hsts, logs, files, (folder / "mapsvc.log").read_text(), (started, ended), code)
    finally:
        if nginx is not None:
            stop_nginx(nginx)
        migrated_template.drop(database)


# --- what the clients got ----------------------------------------------------------------------


def test_everything_was_answered_as_it_should(through):
    assert through.statuses["control"] == [204, 413]
    assert through.statuses["tile"] == [200]
    assert through.statuses["invitation"] == [200]
    assert through.statuses["plain http"] == [301]
    assert through.statuses["too large"] == [413]
    assert through.statuses["plain http to the https port"] == [400]
    assert through.statuses["mapsvc down"] == [502]


def test_each_client_has_its_own_limit(through):
    assert through.statuses["first"] == [201, 201, 201, 429]
    assert through.statuses["second"] == [201]


def test_a_forwarded_for_of_the_clients_own_picks_no_other_key(through):
    # The first stays refused under a stranger's address; the second is not refused as the first.
    assert through.statuses["first as a stranger"] == [429]
    assert through.statuses["second as first"] == [201]


def test_every_answer_over_https_carries_one_hsts_header_and_plain_http_none(through):
    # mapsvc's own copy is hidden: one header, not two; nginx's errors and a 502 carry it too.
    one = ["max-age=31536000"]
    assert through.hsts["https"] == one
    assert through.hsts["nginx's own error"] == one
    assert through.hsts["mapsvc down"] == one
    assert through.hsts["plain http"] == []


def test_mapsvc_sends_hsts_when_its_proxy_says_https_and_not_over_plain_http(through):
    assert through.hsts["mapsvc told https"] == ["max-age=31536000"]
    assert through.hsts["mapsvc over http"] == []


def test_the_shipped_file_replaces_the_forwarded_address():
    # Appending ($proxy_add_x_forwarded_for) would pass the client's own entries on, in front of
    # nginx's: harmless with TRUSTED_PROXIES=1, a chosen key with a count set too high.
    text = SHIPPED.read_text()

    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "proxy_add_x_forwarded_for;" not in text


# --- what nginx wrote --------------------------------------------------------------------------


def _control_line(line: str) -> bool:
    return CONTROL_PATH in line and CONTROL_CLIENT in line


def test_nginx_does_log_where_it_is_not_told_otherwise(through):
    # The control server keeps Debian's logs: one access line per request, an error line for the 413.
    assert through.nginx_logs["access.log"].count(CONTROL_PATH) == 2
    assert "client intended to send too large body" in through.nginx_logs["error.log"]


def _request_log_lines(through: Through) -> list[str]:
    """Return the lines of the logs nginx writes while serving (the start-up log holds its own warnings)."""
    return [line for name in ("access.log", "error.log") for line in through.nginx_logs[name].splitlines()]


def test_nginx_wrote_nothing_about_the_services_requests(through):
    assert [line for line in _request_log_lines(through) if not _control_line(line)] == []


def test_the_only_times_nginx_wrote_are_the_controls(through):
    # Two access lines and one error line of the control server, one time each; nothing else.
    assert [len(STAMP.findall(line)) for line in _request_log_lines(through)] == [1, 1, 1]


@pytest.mark.parametrize("trace", [FIRST, SECOND, "/api/", "/tiles/", "/invite", "map.example.org"])
def test_no_nginx_log_names_a_client_or_a_request(through, trace):
    assert all(trace not in text for text in through.nginx_logs.values())


def test_no_nginx_log_line_but_the_controls_names_any_client(through):
    lines = [line for text in through.nginx_logs.values() for line in text.splitlines()]

    assert [line for line in lines if "client" in line and not _control_line(line)] == []


def test_no_nginx_log_holds_the_invitation_code(through):
    assert all(through.code not in text for text in through.nginx_logs.values())


def test_nginx_kept_no_body_on_disk(through):
    assert [f for f in through.nginx_files if not f.endswith((".conf", ".pid"))] == []


# --- what mapsvc wrote -------------------------------------------------------------------------


@pytest.mark.parametrize("trace", [FIRST, SECOND, "198.51.100.9", "/api/", "/tiles/", "/invite"])
def test_mapsvc_log_names_no_client_or_request(through, trace):
    assert trace not in through.mapsvc_log


def test_mapsvc_log_holds_no_invitation_code(through):
    assert through.code not in through.mapsvc_log


def test_mapsvc_log_has_no_line_from_the_time_of_the_requests(through):
    started, ended = through.window
    stamps = [
        datetime.strptime(found, "%Y-%m-%d %H:%M:%S %z").timestamp()
        for found in re.findall(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4})\]", through.mapsvc_log)
    ]

    assert stamps  # gunicorn's start and stop lines are there, from before and after
    assert [s for s in stamps if started - 1 < s <= ended] == []
