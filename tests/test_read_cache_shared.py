"""Answers shared by the workers through a real Redis: one computation per miss, the staleness bound kept.

As in tests/test_shared_limits.py, this test process's keys carry a tag of its own in the
tests' Redis database, and are deleted afterwards.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from mapsvc import create_app
from mapsvc.core.roles import Role
from mapsvc.web.readcache import Answer, ReadCache
from mapsvc.web.sharedanswers import SharedAnswers
from tests.conftest import BISHKEK
from tests.helpers import layer_ids, post_device
from tests.moderation_helpers import Acting
from tests.test_shared_limits import REDIS_URL, TAG, redis_of_this_process

#: A Redis that is not there: nothing listens on port 1 of the loopback.
NO_REDIS = "redis://127.0.0.1:1/15"


@pytest.fixture
def server():
    """Return a client of the tests' Redis; this process's keys are deleted before and after."""
    with redis_of_this_process() as server:
        yield server


def _answers(server: redis.Redis) -> list[bytes]:
    """Return this process's shared answers (not the generation number, not a lock)."""
    return [k for k in server.scan_iter(f"mapsvc:answers:{TAG}:*") if k.count(b":") == 4]


def _worker(stale_s: float = 5, url: str = REDIS_URL) -> ReadCache:
    """Return one worker's cache, sharing answers through ``url``."""
    return ReadCache(max_bytes=100_000, stale_s=stale_s, shared=SharedAnswers(url, TAG, stale_s))


def test_a_worker_takes_the_answer_another_computed(server):
    first, second = _worker(), _worker()
    builds = []

    for cache in (first, second):
        answer = cache.answer(("layers", 1), lambda: builds.append(1) or b"answer")

    assert answer == Answer.of(b"answer")
    assert len(builds) == 1
    assert len(_answers(server)) == 1


def test_workers_missing_at_once_wait_for_one_computation(server):
    workers = [_worker() for _ in range(4)]
    builds = []
    answers = []

    def slow() -> bytes:
        builds.append(1)
        time.sleep(0.3)  # the other workers ask meanwhile, and wait for this one's lock
        return b"answer"

    threads = [threading.Thread(target=lambda c=cache: answers.append(c.answer("key", slow))) for cache in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(builds) == 1
    assert answers == [Answer.of(b"answer")] * 4


def test_an_answer_from_another_worker_is_kept_only_for_what_is_left_of_its_life(server):
    first, second = _worker(stale_s=1), _worker(stale_s=1)
    first.answer("key", lambda: b"old")
    time.sleep(0.6)
    second.answer("key", lambda: b"new")  # from Redis: computed 0.6 s ago

    time.sleep(0.5)  # 1.1 s after the first computed it: older than READ_STALE_S

    assert second.get("key") is None
    assert second.answer("key", lambda: b"new") == Answer.of(b"new")
    assert server.pttl(_answers(server)[0]) <= 1000


def test_a_removal_makes_the_shared_answers_unreachable(server):
    first, second = _worker(), _worker()
    first.answer("key", lambda: b"with the withdrawn report")

    second.forget()

    assert second.answer("key", lambda: b"without it") == Answer.of(b"without it")
    assert _worker().answer("key", lambda: b"a third worker's") == Answer.of(b"without it")


def test_a_failed_computation_frees_the_lock_at_once(server):
    first, second = _worker(), _worker()

    def fails() -> bytes:
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        first.answer("key", fails)
    started = time.monotonic()
    second.answer("key", lambda: b"answer")

    assert time.monotonic() - started < 1  # not the lock's 3 s


def test_without_redis_each_worker_computes_alone():
    cache = _worker(url=NO_REDIS)
    builds = []

    started = time.monotonic()
    for _ in range(3):
        assert cache.answer(("layers", 1), lambda: builds.append(1) or b"answer") == Answer.of(b"answer")
    cache.forget()

    assert len(builds) == 1  # kept in this worker
    assert time.monotonic() - started < 2  # Redis was tried once, then left alone


@pytest.fixture
def worker_apps(app_config, server):
    """Return a maker of apps (workers) on one store whose limits, and so shared answers, live in Redis."""
    apps = []

    def make(url: str = REDIS_URL):
        apps.append(create_app({**app_config, "RATELIMIT_STORAGE_URI": url, "RATELIMIT_KEY_PREFIX": TAG}))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["mapsvc.store"].dispose()


def test_a_withdrawal_through_one_worker_is_not_undone_by_another_workers_shared_answer(worker_apps):
    first, second = (worker_apps().test_client() for _ in range(2))
    posted = post_device(first, BISHKEK)
    receipt = posted.get_json()
    assert layer_ids(second) == [posted.event_id]  # shared in Redis

    first.delete(f"/api/reports/{receipt['id']}", headers={"X-Withdrawal-Code": receipt["withdrawal_code"]})

    assert layer_ids(first) == []


def test_only_public_answers_are_shared(worker_apps, server):
    app = worker_apps()
    client = app.test_client()
    acting = Acting(app)
    post_device(client, BISHKEK, category="attack")  # a single attack: the public sees it only as heat

    acting.role = Role.MODERATOR
    assert layer_ids(client)
    assert _answers(server) == []

    acting.role = Role.ANONYMOUS
    assert layer_ids(client) == []
    assert len(_answers(server)) == 1


def test_reads_are_answered_when_redis_is_down(worker_apps):
    client = worker_apps(NO_REDIS).test_client()
    created = post_device(client, BISHKEK).event_id

    assert layer_ids(client) == [created]
    assert client.get("/api/heat").status_code == 200


def test_a_shared_answer_due_for_its_successor_is_computed_anew_by_one_worker(server):
    first, second, third = (SharedAnswers(REDIS_URL, TAG, 4) for _ in range(3))
    first.answer("key", lambda: b"old")
    time.sleep(3)  # 1 s of its life left: due (after 70 %, 2.8 s), with room for a slow machine
    builds = []
    answers = []

    def slow() -> bytes:
        builds.append(1)
        time.sleep(0.3)  # the third worker asks meanwhile
        return b"new"

    leader = threading.Thread(target=lambda: answers.append(second.answer("key", slow, refresh_left_s=1.2)))
    leader.start()
    time.sleep(0.1)
    body, left = third.answer("key", lambda: builds.append(1) or b"third's", refresh_left_s=1.2)
    leader.join(5)

    assert (body, builds) == (b"old", [1])  # served what there is while the second computes, not waiting
    assert 0 < left <= 1
    assert answers[0][0] == b"new"
    assert first.answer("key", lambda: b"first's again")[0] == b"new"


def test_a_shared_answer_not_yet_due_is_taken_as_it_is(server):
    first, second = SharedAnswers(REDIS_URL, TAG, 5), SharedAnswers(REDIS_URL, TAG, 5)
    first.answer("key", lambda: b"old")

    assert second.answer("key", lambda: b"new", refresh_left_s=1.5)[0] == b"old"
