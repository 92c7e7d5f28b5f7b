"""Limits shared by several workers through a real Redis: one count for all of them, no salt in it.

CI starts a Redis that keeps nothing on disk (scripts/test.sh); MAPSVC_TEST_REDIS names it.
Two apps stand for two workers: forked workers of ``mapsvc serve`` share the secret the app
made before the fork, and separate hosts share it through ``LIMIT_KEY_SECRET``, as here.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from mapsvc import create_app
from mapsvc.web.hooks import windows
from tests.conftest import BISHKEK, NOW
from tests.servers import keep_clear_of_the_hours_end, request, serving

REDIS_URL = os.environ.get("MAPSVC_TEST_REDIS", "redis://127.0.0.1:6379/15")
#: This test process's keys in the shared Redis: apart from every other worker's and run's on the machine.
TAG = f"mapsvc-test-p{os.getpid()}q"
SECRET = "tests-shared-limit-key-secret-0123456789"

#: Any Unix time of this century in seconds (or finer) is at least this; a window's number is far below.
UNIX_TIME = 10**9


@pytest.fixture
def workers(app_config):
    """Return two apps (two workers) on one store whose limits live in one fresh Redis database."""
    server = redis.Redis.from_url(REDIS_URL)
    prefix = TAG
    _forget(server, prefix)
    config = {
        **app_config,
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        # Keys of parallel test workers apart, in the one Redis database.
        "RATELIMIT_KEY_PREFIX": prefix,
        "INTAKE_RATE_LIMIT": "4 per minute;100 per hour",
        "BURST_HOLD": "2 per hour",
        "LIMIT_KEY_SECRET": SECRET,
    }
    apps = [create_app(config), create_app(config)]
    yield apps
    for app in apps:
        app.extensions["mapsvc.store"].dispose()
    _forget(server, prefix)
    server.close()


def _forget(server: redis.Redis, prefix: str) -> None:
    """Delete this test worker's limit counts (other workers' stay)."""
    for key in server.scan_iter(f"*{prefix}*"):
        server.delete(key)


@contextmanager
def redis_of_this_process() -> Iterator[redis.Redis]:
    """Yield a client of the tests' Redis; this process's keys are deleted before and after."""
    server = redis.Redis.from_url(REDIS_URL)
    _forget(server, TAG)
    yield server
    _forget(server, TAG)
    server.close()


def _report(client):
    body = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]}
    return client.post("/api/reports", json=body, environ_base={"REMOTE_ADDR": "198.51.100.7"})


def test_two_workers_count_one_address_together(workers):
    first, second = (app.test_client() for app in workers)

    statuses = [_report(client).status_code for client in (first, second, first, second, first, second)]

    assert statuses == [201, 201, 201, 201, 429, 429]


def test_another_address_has_its_own_count(workers):
    first, second = (app.test_client() for app in workers)
    for client in (first, second, first, second):
        _report(client)

    other = second.post(
        "/api/reports",
        json={"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )

    assert other.status_code == 201


def test_redis_holds_no_address(workers):
    client = workers[0].test_client()
    for _ in range(5):
        _report(client)

    server = redis.Redis.from_url(REDIS_URL)
    ours = list(server.scan_iter(f"*{TAG}*"))
    everything = list(server.scan_iter("*"))
    stored = b" ".join([*everything, *(server.dump(k) or b"" for k in everything)])
    server.close()
    assert ours  # the limits are there
    assert b"198.51.100.7" not in stored


def _ours(server: redis.Redis) -> dict[str, tuple[bytes, bytes | None, int]]:
    """Return this test worker's keys with their type, value and time to live."""
    keys = server.scan_iter(f"*{TAG}*")
    return {k.decode(): (server.type(k), server.get(k), server.ttl(k)) for k in keys}


def test_redis_holds_one_number_per_source_and_clock_window(workers):
    client = workers[0].test_client()
    for _ in range(6):
        _report(client)
    now = windows.time.time()  # the windows' clock (tests pin it; see conftest)

    server = redis.Redis.from_url(REDIS_URL)
    ours = _ours(server)
    server.close()

    # Intake per minute and per hour, the burst hold per hour: a counter each, no list or sorted set.
    assert sorted(k.split("/")[-2] for k in ours) == ["hour", "hour", "minute"]
    for key, (kind, value, ttl) in ours.items():
        length = 60 if key.split("/")[-2] == "minute" else 3600
        window = int(key.split("/")[-1])
        assert kind == b"string" and value is not None and 1 <= int(value) <= 6
        assert window == math.floor(now / length)  # the key names the clock's window, not a request's time
        assert 0 < ttl <= (window + 1) * length - now + 1  # it expires when that window ends
        assert all(not part.isdigit() or int(part) < UNIX_TIME for part in key.split("/"))


def test_redis_holds_no_salt_or_secret(workers):
    for app in workers:
        _report(app.test_client())
    day = NOW.strftime("%Y-%m-%d")  # the salt's day (tests pin it; see conftest)
    salt = hmac.new(SECRET.encode(), day.encode(), hashlib.sha256).digest()

    server = redis.Redis.from_url(REDIS_URL)
    everything = list(server.scan_iter("*"))
    stored = b" ".join([*everything, *(server.dump(k) or b"" for k in everything)])
    ours = _ours(server)
    server.close()

    assert ours  # the counts are there
    for secret in (SECRET.encode(), salt, salt.hex().encode()):
        assert secret not in stored


@pytest.mark.engines("sqlite")
def test_the_workers_of_one_server_share_the_secret_made_before_they_fork(migrated_template, tmp_path):
    """``mapsvc serve`` makes the app, and so the secret, before gunicorn forks: one count for all.

    (With "memory://" each worker would count apart: ``mapsvc serve`` refuses that, see
    tests/test_worker_counts.py.)
    """
    url = migrated_template.fresh(tmp_path)
    body = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1], "fuzzed_on_device": True}
    limits = {"RATELIMIT_ENABLED": "true", "INTAKE_RATE_LIMIT": "3 per hour", "BURST_HOLD": '""'}
    prefix = f"{TAG}-served"
    with serving(
        url, tmp_path / "server.log", workers=2, RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix, **limits
    ) as port:
        keep_clear_of_the_hours_end()
        # Each request on a new connection: the two workers take turns.
        accepted = [request(port, "POST", "/api/reports", body)[0] for _ in range(12)].count(201)
    server = redis.Redis.from_url(REDIS_URL)
    _forget(server, prefix)
    server.close()

    assert accepted == 3
