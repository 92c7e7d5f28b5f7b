"""The read cache: answers served READ_STALE_S seconds, removals at once, shared rounding of "now", bounded memory."""

from __future__ import annotations

import gzip
import multiprocessing
import os
import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event

from mapsvc import create_app
from mapsvc.core.policy import DEFAULT_POLICIES
from mapsvc.core.roles import Role
from mapsvc.web.readcache import ENTRY_OVERHEAD_BYTES, REFRESH_AFTER, Answer, ReadCache
from tests.conftest import BISHKEK, NOW
from tests.helpers import heat_cells, iso, layer_ids, parse_iso, post_device
from tests.moderation_helpers import Acting, act

PLACES = [(42.8746, 74.5698), (42.8801, 74.5912), (42.8655, 74.6013)]


@pytest.fixture
def other_client(app_config):
    """Return a maker of clients of another app (another worker) on the same database."""
    apps = []

    def make(**config):
        apps.append(create_app({**app_config, **config}))
        return apps[-1].test_client()

    yield make
    for other in apps:
        other.extensions["mapsvc.store"].dispose()


class Ticks:
    """A monotonic clock for the read cache that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks(app):
    """Return the clock of the app's read cache (READ_STALE_S counts on it)."""
    ticks = Ticks()
    app.extensions["mapsvc.read_cache"].clock = ticks
    return ticks


@pytest.mark.parametrize("path", ["/api/layers", "/api/heat"])
def test_a_new_report_shows_once_the_answer_is_due_for_its_successor(app, ticks, client, path):
    stale_s = app.config["READ_STALE_S"]
    minimum = DEFAULT_POLICIES["raid"].min_count_public
    for hours in range(1, minimum):  # one cell, one event short of showing as heat
        post_device(client, BISHKEK, category="raid", occurred_at=NOW - timedelta(hours=hours))
    before = client.get(path).get_json()

    post_device(client, BISHKEK, category="raid", occurred_at=NOW)

    ticks.now += REFRESH_AFTER * stale_s - 0.25
    assert client.get(path).get_json() == before  # a write no longer empties the cache
    ticks.now += 0.25
    assert client.get(path).get_json() != before  # the first read at 70 % of READ_STALE_S computes anew


def test_the_staleness_bound_is_five_seconds_by_default(app):
    assert app.config["READ_STALE_S"] == 5
    assert app.extensions["mapsvc.read_cache"].stale_s == 5


@pytest.mark.parametrize("form", [False, True])
def test_a_withdrawn_report_leaves_at_the_next_read(ticks, client, form):
    posted = post_device(client, BISHKEK)
    receipt = posted.get_json()
    assert layer_ids(client) == [posted.event_id]

    if form:
        fields = {"report_id": receipt["id"], "withdrawal_code": receipt["withdrawal_code"]}
        assert client.post("/report/withdraw", data=fields).status_code == 200
    else:
        headers = {"X-Withdrawal-Code": receipt["withdrawal_code"]}
        assert client.delete(f"/api/reports/{receipt['id']}", headers=headers).status_code == 204

    assert layer_ids(client) == []


def test_a_wrong_withdrawal_code_keeps_the_answers(app, ticks, client):
    receipt = post_device(client, BISHKEK).get_json()
    layer_ids(client)
    kept = len(app.extensions["mapsvc.read_cache"])

    client.delete(f"/api/reports/{receipt['id']}", headers={"X-Withdrawal-Code": "wrong"})
    client.post("/report/withdraw", data={"report_id": receipt["id"], "withdrawal_code": "wrong"})

    assert kept == 1
    assert len(app.extensions["mapsvc.read_cache"]) == kept


def test_a_moderators_decision_shows_at_the_next_read(app, ticks, client):
    acting = Acting(app)
    event = acting.report(client, BISHKEK)
    assert layer_ids(client) == [event]

    acting.role = Role.MODERATOR
    act(client, event, "reject")
    acting.role = Role.ANONYMOUS

    assert layer_ids(client) == []


def test_a_report_through_another_worker_shows_within_read_stale_s(app, other_client, ticks, client):
    """Each worker keeps its own answers for READ_STALE_S; nothing tells it of another's write."""
    other = other_client()
    assert layer_ids(client) == []  # kept empty

    created = post_device(other, BISHKEK).event_id

    assert layer_ids(client) == []
    ticks.now += app.config["READ_STALE_S"]
    assert layer_ids(client) == [created]


def test_a_hit_asks_the_database_nothing(app, client):
    layer_ids(client)
    statements = []
    engine = app.extensions["mapsvc.store"].engine
    listen = lambda *args: statements.append(args[2])  # noqa: E731

    event.listen(engine, "before_cursor_execute", listen)
    try:
        layer_ids(client)
    finally:
        event.remove(engine, "before_cursor_execute", listen)

    assert statements == []


@pytest.mark.parametrize("path", ["/api/layers", "/api/heat"])
def test_cached_answers_equal_fresh_ones(other_client, client, path):
    for hours, point in enumerate(PLACES * 3):
        post_device(client, point, category="raid", occurred_at=NOW - timedelta(hours=hours))
    uncached = other_client(READ_CACHE_S=0)

    for _ in range(2):
        assert client.get(path).get_json() == uncached.get(path).get_json()


def test_reads_of_now_are_answered_for_now_rounded_down(other_client, clock, client):
    clock.now = NOW + timedelta(seconds=17)
    uncached = other_client(READ_CACHE_S=0)

    assert parse_iso(client.get("/api/layers").get_json()["at"]) == NOW + timedelta(seconds=10)
    assert parse_iso(uncached.get("/api/layers").get_json()["at"]) == NOW + timedelta(seconds=17)


def test_a_given_moment_is_answered_rounded_down_as_now_is(clock, client):
    clock.now = NOW + timedelta(seconds=17)
    at = NOW + timedelta(seconds=3)

    assert parse_iso(client.get("/api/heat", query_string={"at": iso(at)}).get_json()["at"]) == NOW


def test_the_answer_moves_on_with_the_clock(clock, client):
    """An event that fades between two rounded moments leaves the cached view."""
    post_device(client, BISHKEK, category="checkpoint", occurred_at=NOW)
    assert layer_ids(client)
    assert heat_cells(client) == {}  # one event is below the public minimum of a cell

    clock.now = NOW + timedelta(days=3)

    assert layer_ids(client) == []


def test_the_cache_keeps_to_its_byte_bound_dropping_the_least_recent():
    cache = ReadCache(max_bytes=4 * (900 + ENTRY_OVERHEAD_BYTES) + 100, stale_s=5)  # room for four
    for i in range(10):
        cache.put(i, Answer.of(bytes(900)))
    assert cache.get(0) is None
    assert cache.get(9) == Answer.of(bytes(900))
    assert sum(cache.get(i) is not None for i in range(10)) == 4


def test_one_huge_answer_is_not_kept():
    cache = ReadCache(max_bytes=4000, stale_s=5)
    cache.put("small", Answer.of(b"x"))
    cache.put("huge", Answer.of(bytes(3000)))
    assert cache.get("huge") is None
    assert cache.get("small") == Answer.of(b"x")


def test_an_answer_is_never_served_older_than_read_stale_s_and_its_successor_comes_after_70_percent():
    ticks = Ticks()
    cache = ReadCache(max_bytes=10_000, stale_s=5, clock=ticks)
    builds = []
    build = lambda: builds.append(ticks.now) or b"answer"  # noqa: E731

    for step in (0, 2, 1.4, 0.1, 1.5, 4.0):  # at 1000, 1002, 1003.4, 1003.5, 1005, 1009
        ticks.now += step
        assert cache.answer("key", build).body == b"answer"

    # the successor is computed by the first read at 70 % of the life (3.5 s), not before; an
    # answer that nobody asked for until its life ended (1008.5) is not served either
    assert builds == [1000.0, 1003.5, 1009.0]


def test_while_one_read_computes_the_successor_the_others_are_served_the_kept_answer():
    ticks = Ticks()
    cache = ReadCache(max_bytes=10_000, stale_s=5, clock=ticks)
    cache.answer("key", lambda: b"old")
    ticks.now += 4  # due for its successor, still young enough to serve
    builds = []

    def slow() -> bytes:
        builds.append(1)
        time.sleep(0.5)  # the other reads come meanwhile
        return b"new"

    started = time.monotonic()
    answers = _crowd(cache, slow)

    assert len(builds) == 1
    assert sorted(a.body for a in answers) == [b"new"] + [b"old"] * 7
    assert cache.get("key") == Answer.of(b"new")
    assert time.monotonic() - started < 5  # nobody waited for FLIGHT_WAIT_S


def test_while_a_new_rounding_of_now_is_computed_the_one_before_stands_in():
    cache = ReadCache(max_bytes=10_000, stale_s=5)
    cache.answer("10:00:00", lambda: b"at 10:00:00")
    computing = threading.Event()
    answers = []

    def slow() -> bytes:
        computing.set()
        time.sleep(0.5)
        return b"at 10:00:10"

    leader = threading.Thread(target=lambda: answers.append(cache.answer("10:00:10", slow, stand_in="10:00:00")))
    leader.start()
    computing.wait(5)
    other = cache.answer("10:00:10", lambda: b"computed again", stand_in="10:00:00")
    leader.join(5)

    assert other == Answer.of(b"at 10:00:00")
    assert answers == [Answer.of(b"at 10:00:10")]
    assert cache.answer("10:00:10", lambda: b"computed again", stand_in="10:00:00") == Answer.of(b"at 10:00:10")


def test_a_stand_in_too_old_to_serve_is_not_served():
    ticks = Ticks()
    cache = ReadCache(max_bytes=10_000, stale_s=5, clock=ticks)
    cache.answer("10:00:00", lambda: b"at 10:00:00")
    ticks.now += 5  # its life is over
    computing = threading.Event()

    def slow() -> bytes:
        computing.set()
        time.sleep(0.3)
        return b"at 10:00:10"

    leader = threading.Thread(target=lambda: cache.answer("10:00:10", slow))
    leader.start()
    computing.wait(5)
    other = cache.answer("10:00:10", lambda: b"computed again", stand_in="10:00:00")
    leader.join(5)

    assert other == Answer.of(b"at 10:00:10")  # it waited for the computation instead


@pytest.mark.parametrize("path", ["/api/layers", "/api/heat"])
def test_a_read_of_now_names_the_same_read_one_rounding_earlier_as_its_stand_in(monkeypatch, client, path):
    asked = []
    real = ReadCache.answer
    monkeypatch.setattr(ReadCache, "answer", lambda self, *a, **k: asked.append(a) or real(self, *a, **k))
    rounding = timedelta(seconds=client.application.config["READ_CACHE_S"])

    assert client.get(path).status_code == 200
    assert client.get(f"{path}?at={iso(NOW - timedelta(hours=1))}").status_code == 200

    (key, _build, _shared, stand_in), (_, _, _, given_moment) = asked
    moments = [i for i, part in enumerate(key) if isinstance(part, datetime)]
    assert len(moments) >= 1
    assert stand_in == tuple(part - rounding if i == moments[0] else part for i, part in enumerate(key))
    assert given_moment is None  # a moment asked for is answered for that moment only


def test_the_bound_counts_from_when_the_computation_began():
    ticks = Ticks()
    cache = ReadCache(max_bytes=10_000, stale_s=5, clock=ticks)

    def slow() -> bytes:
        ticks.now += 2  # the answer reflects the store as it was when this began
        return b"answer"

    cache.answer("key", slow)
    ticks.now += 2.75
    assert cache.get("key") == Answer.of(b"answer")
    ticks.now += 0.25
    assert cache.get("key") is None


def _crowd(cache: ReadCache, build, threads: int = 8) -> list[Answer | Exception]:
    """Ask ``cache`` for one key from many threads at once; return their answers (or errors)."""
    answers: list[Answer | Exception] = []

    def ask() -> None:
        try:
            answers.append(cache.answer("key", build))
        except RuntimeError as error:
            answers.append(error)

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    return answers


def test_threads_asking_for_a_missing_answer_wait_for_one_computation():
    cache = ReadCache(max_bytes=10_000, stale_s=5)
    builds = []

    def slow() -> bytes:
        builds.append(1)
        time.sleep(0.3)  # the others arrive meanwhile
        return b"answer"

    answers = _crowd(cache, slow)

    assert len(builds) == 1
    assert answers == [Answer.of(b"answer")] * 8


def test_when_the_one_computation_fails_each_waiting_thread_computes_its_own():
    cache = ReadCache(max_bytes=10_000, stale_s=5)
    builds = []

    def first_fails() -> bytes:
        builds.append(1)
        if len(builds) == 1:
            time.sleep(0.3)
            raise RuntimeError("the database went away")
        return b"answer"

    answers = _crowd(cache, first_fails, threads=4)

    assert len(builds) == 4
    assert [a for a in answers if isinstance(a, Answer)] == [Answer.of(b"answer")] * 3
    assert [str(a) for a in answers if isinstance(a, Exception)] == ["the database went away"]


def test_an_answer_computed_across_a_removal_is_not_kept():
    cache = ReadCache(max_bytes=10_000, stale_s=5)

    def across() -> bytes:
        cache.forget()  # a withdrawal commits while this computes
        return b"answer"

    assert cache.answer("key", across) == Answer.of(b"answer")
    assert cache.get("key") is None


@pytest.mark.parametrize("path", ["/api/layers", "/api/heat"])
def test_a_cached_answer_is_sent_gzipped_and_revalidated(client, path):
    for hours in range(4):
        for point in PLACES:
            post_device(client, point, category="raid", occurred_at=NOW - timedelta(hours=hours))
    plain = client.get(path)
    packed = [client.get(path, headers={"Accept-Encoding": "gzip"}) for _ in range(2)]

    assert [p.headers["Content-Encoding"] for p in packed] == ["gzip", "gzip"]
    assert gzip.decompress(packed[1].data) == plain.data
    assert client.get(path, headers={"If-None-Match": plain.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize(
    "setting",
    [
        {"READ_CACHE_S": -1},
        {"READ_CACHE_S": "ten"},
        {"READ_CACHE_MB": -5},
        {"READ_STALE_S": -1},
        {"READ_STALE_S": 61},
        {"READ_STALE_S": "5"},
        {"READ_STALE_S": True},
    ],
)
def test_bad_cache_settings_are_refused_naming_them(app_config, setting):
    with pytest.raises(ValueError, match=next(iter(setting))):
        create_app({**app_config, **setting})


@pytest.mark.parametrize("setting", [{"READ_STALE_S": 0}, {"READ_CACHE_S": 0}, {"READ_CACHE_MB": 0}])
def test_the_cache_is_off_when_a_setting_is_0(app_config, setting):
    app = create_app({**app_config, **setting})
    assert app.extensions["mapsvc.read_cache"] is None
    app.extensions["mapsvc.store"].dispose()


def test_a_failed_successor_leaves_the_kept_answer_served_until_its_life_ends():
    ticks = Ticks()
    cache = ReadCache(max_bytes=10_000, stale_s=5, clock=ticks)
    cache.answer("key", lambda: b"kept")
    ticks.now += 4  # due for its successor
    tries = []

    def outage() -> bytes:
        tries.append(ticks.now)
        raise RuntimeError("the database went away")

    assert cache.answer("key", outage) == Answer.of(b"kept")
    ticks.now += 0.9
    assert cache.answer("key", outage) == Answer.of(b"kept")  # no second try before its life ends
    assert tries == [1004.0]
    ticks.now += 0.1  # 5 s old: never served
    with pytest.raises(RuntimeError):
        cache.answer("key", outage)


class _RecordingShared:
    """Shared answers that note the local cache's generation when told to forget."""

    def __init__(self, cache_of) -> None:
        self.cache_of = cache_of
        self.generation_seen: list[int] = []

    def forget(self) -> None:
        self.generation_seen.append(self.cache_of()._generation)


def test_a_removal_makes_the_shared_answers_unreachable_before_the_workers_own():
    caches: list[ReadCache] = []
    shared = _RecordingShared(lambda: caches[0])
    caches.append(ReadCache(max_bytes=10_000, stale_s=5, shared=shared))  # type: ignore[arg-type]

    caches[0].forget()

    # a read between the two would otherwise fetch an old shared answer and keep it as new
    assert shared.generation_seen == [0]
    assert caches[0]._generation == 1


def test_an_answer_whose_computation_began_before_a_removal_is_not_kept_even_if_put_after():
    cache = ReadCache(max_bytes=10_000, stale_s=5)
    generation = cache._generation
    cache.forget()
    cache.put("key", Answer.of(b"computed before"), generation=generation)
    assert cache.get("key") is None


def _remove_in_a_child(cache: ReadCache) -> None:
    cache.forget()
    os._exit(0)


def test_a_removal_in_another_worker_drops_this_workers_answers_at_its_next_read():
    """gunicorn forks the workers from the process that made the cache: a removal in one reaches all."""
    cache = ReadCache(max_bytes=10_000, stale_s=5)
    cache.put("view", Answer.of(b"an event that is then withdrawn"))
    other = ReadCache(max_bytes=10_000, stale_s=5)  # a cache of another server: its own number
    other.put("view", Answer.of(b"kept"))
    context = multiprocessing.get_context("fork")

    child = context.Process(target=_remove_in_a_child, args=(cache,))
    child.start()
    child.join(10)

    assert child.exitcode == 0
    assert cache.get("view") is None
    assert other.get("view") is not None
    cache.put("view", Answer.of(b"computed after the removal"))
    assert cache.get("view") == Answer.of(b"computed after the removal")
