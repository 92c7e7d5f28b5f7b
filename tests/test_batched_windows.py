"""The read limit counted in each worker and settled with Redis in batches (mapsvc.web.hooks.batched_windows).

As in tests/test_shared_limits.py, this test process's keys carry a tag of its own in the tests'
Redis database and are deleted before and after. The flushers sleep an hour unless a test says
otherwise, so counts reach Redis when a test flushes them.
"""

from __future__ import annotations

import logging
import os
import time
from types import SimpleNamespace

import pytest
import redis
from limits import parse
from limits.storage import storage_from_string

from mapsvc import create_app
from mapsvc.web.hooks import batched_windows, windows
from mapsvc.web.hooks.batched_windows import BatchedClockWindowRateLimiter
from mapsvc.web.hooks.limits import READ_SCOPE
from mapsvc.web.hooks.windows import ClockWindowRateLimiter
from tests.servers import keep_clear_of_the_hours_end, request, serving
from tests.test_read_cache_shared import NO_REDIS
from tests.test_shared_limits import REDIS_URL, SECRET, TAG, redis_of_this_process

MINUTE = parse("6 per minute")
#: A hit's identifiers as Flask-Limiter gives them: key prefix, the source's key, the shared limit's scope.
READ = (TAG, "source", READ_SCOPE)
CRAWLER = {"REMOTE_ADDR": "203.0.113.7"}


@pytest.fixture(autouse=True)
def flushed_by_the_tests(monkeypatch):
    """Have the flushers started in a test sleep through it."""
    monkeypatch.setattr(batched_windows, "FLUSH_S", 3600)


@pytest.fixture
def server():
    """Return a client of the tests' Redis; this process's keys are deleted before and after."""
    with redis_of_this_process() as server:
        yield server


def _strategy(url: str = REDIS_URL) -> BatchedClockWindowRateLimiter:
    """Return one worker's strategy, counting the read scope in the worker."""
    strategy = BatchedClockWindowRateLimiter(storage_from_string(url))
    strategy.batched_scopes = frozenset({READ_SCOPE})
    return strategy


def _stored(server: redis.Redis, strategy: BatchedClockWindowRateLimiter, identifiers=READ) -> int | None:
    """Return the count Redis holds for ``identifiers`` in the current minute, if any."""
    key, _end = strategy._key(MINUTE, identifiers)
    value = server.get(strategy.storage.prefixed_key(key))
    return None if value is None else int(value)


def _wait_for(condition, timeout_s: float = 10) -> None:
    """Wait until ``condition()`` holds (a flusher's next interval); fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the flusher sent nothing"
        time.sleep(0.01)


# --- one worker, the strategy alone --------------------------------------------------------------


def test_with_memory_storage_reads_are_counted_in_the_store():
    strategy = _strategy("memory://")

    admitted = [strategy.hit(MINUTE, *READ) for _ in range(7)]

    assert strategy.worker_counts is None
    assert admitted == [True] * 6 + [False]
    assert strategy.storage.get(strategy._key(MINUTE, READ)[0]) == 7


def test_a_read_does_not_call_redis(server, monkeypatch):
    strategy = _strategy()
    calls = []
    command, execute = redis.Redis.execute_command, redis.client.Pipeline.execute
    monkeypatch.setattr(redis.Redis, "execute_command", lambda *a, **k: calls.append("command") or command(*a, **k))
    monkeypatch.setattr(redis.client.Pipeline, "execute", lambda *a, **k: calls.append("pipeline") or execute(*a, **k))

    admitted = [strategy.hit(MINUTE, *READ) for _ in range(7)]
    during_reads = list(calls)
    strategy.flush()

    assert admitted == [True] * 6 + [False]  # the seventh refused by the worker's own count
    assert during_reads == []
    assert calls.count("pipeline") == 1  # the flush: one pipeline for every key


def test_other_limits_count_in_redis_at_every_hit(server):
    strategy = _strategy()
    intake = (TAG, "source", "intake")

    strategy.hit(MINUTE, *intake)

    assert _stored(server, strategy, intake) == 1
    assert len(strategy.worker_counts) == 0


def test_a_flush_leaves_the_key_the_exact_count_makes(server):
    strategy = _strategy()
    for _ in range(3):
        strategy.hit(MINUTE, *READ)
    strategy.flush()
    now = windows.time.time()  # the windows' clock (pinned by the tests)

    within, key = ClockWindowRateLimiter(strategy.storage).hit_window(MINUTE, *READ)  # counted as before
    stored = strategy.storage.prefixed_key(key)

    assert within and int(server.get(stored)) == 4  # the same key: the flush's 3, then the exact 1
    _number, end = windows.window_of(MINUTE, now)
    assert 0 < server.ttl(stored) <= end - now  # it expires when its window ends


def test_a_windows_counts_are_dropped_when_it_ends(server, monkeypatch):
    strategy = _strategy()
    for _ in range(6):
        strategy.hit(MINUTE, *READ)
    ended = _stored(server, strategy)
    monkeypatch.setattr(windows.time, "now", windows.time.now + 60)  # the next minute

    strategy.flush()

    assert ended is None and len(strategy.worker_counts) == 0  # unsent, and not kept
    assert server.keys(f"*{TAG}*") == []
    assert [strategy.hit(MINUTE, *READ) for _ in range(6)] == [True] * 6  # a new window, a new count


def test_the_first_read_starts_a_flusher_that_sends_by_itself(server, monkeypatch):
    monkeypatch.setattr(batched_windows, "FLUSH_S", 0.01)
    strategy = _strategy()

    strategy.hit(MINUTE, *READ)

    _wait_for(lambda: _stored(server, strategy) == 1)


def test_after_a_fork_a_new_flusher_sends_the_childs_reads_only(server, monkeypatch):
    strategy = _strategy()
    for _ in range(3):
        strategy.hit(MINUTE, *READ)  # the parent's, which its own flusher sends (in an hour, here)
    monkeypatch.setattr(batched_windows, "os", SimpleNamespace(getpid=lambda: os.getpid() + 1))
    monkeypatch.setattr(batched_windows, "FLUSH_S", 0.01)

    strategy.hit(MINUTE, *READ)  # the child's first read
    _wait_for(lambda: _stored(server, strategy) is not None)
    strategy.flush()

    assert _stored(server, strategy) == 1


def test_a_failed_flush_keeps_the_counts_and_is_logged_once(server, monkeypatch, caplog):
    strategy = _strategy()
    for _ in range(3):
        strategy.hit(MINUTE, *READ)
    execute = redis.client.Pipeline.execute

    def unreachable(*args, **kwargs):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(redis.client.Pipeline, "execute", unreachable)
    with caplog.at_level(logging.INFO, logger=batched_windows.__name__):
        strategy.flush()
        strategy.flush()
        refused = strategy.hit(MINUTE, *READ, cost=4)  # 3 pending + 4 > 6: the worker still counts
        monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
        strategy.flush()

    key, _end = strategy._key(MINUTE, READ)
    messages = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert messages == [
        ("WARNING", "the read limit's counts were not sent to the limit store (ConnectionError)"),
        ("INFO", "the read limit's counts reach the limit store again"),
    ]
    assert not refused
    assert _stored(server, strategy) == 3  # kept while Redis was away, then sent once
    assert all(key not in message and "source" not in message for _level, message in messages)


# --- workers: apps on one Redis ------------------------------------------------------------------


@pytest.fixture
def workers(app_config, server):
    """Return a maker of apps (workers) whose limits live in ``url``, with a read limit of 6 per minute."""
    apps = []

    def make(url: str = REDIS_URL):
        config = {
            **app_config,
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": url,
            "RATELIMIT_KEY_PREFIX": TAG,
            "LIMIT_KEY_SECRET": SECRET,
            "READ_RATE_LIMIT": "6 per minute",
        }
        apps.append(create_app(config))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["mapsvc.store"].dispose()


def _read(app) -> int:
    return app.test_client().get("/api/layers", environ_base=CRAWLER).status_code


def _flush(app) -> None:
    app.extensions["mapsvc.limiter"].limiter.flush()


def test_one_worker_refuses_past_the_limit_before_any_flush(workers):
    worker = workers()

    assert [_read(worker) for _ in range(7)] == [200] * 6 + [429]


def test_two_workers_refuse_once_their_counts_are_settled(workers):
    first, second = workers(), workers()

    before = [_read(worker) for worker in (first, second) for _ in range(6)]
    _flush(first)
    _flush(second)
    after = [_read(worker) for worker in (first, second)]

    assert before == [200] * 12  # each admitted the limit on its own count: the bound, W × the limit
    assert after == [429, 429]


def test_a_crawler_through_two_workers_gets_at_most_an_interval_each_beyond_the_limit(workers):
    first, second = workers(), workers()
    statuses = []
    for _ in range(10):  # each worker answers one read per flush interval
        statuses += [_read(first), _read(second)]
        _flush(first)
        _flush(second)

    assert statuses[:6] == [200] * 6  # within the limit, never refused
    assert statuses.count(200) <= 6 + 2  # the limit, and one interval's reads per worker
    assert statuses[-4:] == [429] * 4


def test_reads_are_answered_when_the_limit_store_is_down(workers):
    worker = workers(NO_REDIS)

    statuses = [_read(worker) for _ in range(3)]
    _flush(worker)  # fails, and raises nothing
    statuses += [_read(worker) for _ in range(4)]

    assert statuses == [200] * 6 + [429]  # answered, and limited by the worker's own count


@pytest.mark.engines("sqlite")
def test_the_workers_of_a_server_send_every_read_to_redis_once(migrated_template, tmp_path, server):
    """Forked by gunicorn from the process that made the app, each worker starts a flusher of its own."""
    url = migrated_template.fresh(tmp_path)
    prefix = f"{TAG}-served"
    limits = {"RATELIMIT_ENABLED": "true", "READ_RATE_LIMIT": "1000 per hour", "BURST_HOLD": '""'}
    log = tmp_path / "server.log"
    with serving(url, log, workers=2, RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix, **limits) as port:
        keep_clear_of_the_hours_end()
        # Each request on a new connection: the two workers take turns.
        statuses = [request(port, "GET", "/api/layers")[0] for _ in range(20)]

        def counted() -> int:
            return sum(int(server.get(key) or 0) for key in server.keys(f"*{prefix}/*/read/*"))

        _wait_for(lambda: counted() >= 20)

    assert statuses == [200] * 20
    assert counted() == 20
