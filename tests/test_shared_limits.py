"""Limits shared by several workers through a real Redis: one count and one salt for all of them.

CI starts a Redis that keeps nothing on disk (scripts/test.sh); MAPSVC_TEST_REDIS names it.
"""

from __future__ import annotations

import os

import pytest
import redis

from mapsvc import create_app
from tests.conftest import BISHKEK

REDIS_URL = os.environ.get("MAPSVC_TEST_REDIS", "redis://127.0.0.1:6379/15")


@pytest.fixture
def workers(app_config, worker_id):
    """Return two apps (two workers) on one store whose limits live in one fresh Redis database."""
    server = redis.Redis.from_url(REDIS_URL)
    prefix = f"mapsvc-test-{worker_id}"
    _forget(server, prefix)
    config = {
        **app_config,
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        # Keys of parallel test workers apart, in the one Redis database.
        "RATELIMIT_KEY_PREFIX": prefix,
        "INTAKE_RATE_LIMIT": "4 per minute",
        "BURST_HOLD": "",
    }
    apps = [create_app(config), create_app(config)]
    yield apps
    for app in apps:
        app.extensions["mapsvc.store"].dispose()
    _forget(server, prefix)
    server.close()


def _forget(server: redis.Redis, prefix: str) -> None:
    """Delete this test worker's limit counts (other workers' stay; the day's salt is shared)."""
    for key in server.scan_iter(f"*{prefix}*"):
        server.delete(key)


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


def test_redis_holds_no_address(workers, worker_id):
    client = workers[0].test_client()
    for _ in range(5):
        _report(client)

    server = redis.Redis.from_url(REDIS_URL)
    ours = list(server.scan_iter(f"*mapsvc-test-{worker_id}*"))
    everything = list(server.scan_iter("*"))
    stored = b" ".join([*everything, *(server.dump(k) or b"" for k in everything)])
    server.close()
    assert ours  # the limits are there
    assert b"198.51.100.7" not in stored
