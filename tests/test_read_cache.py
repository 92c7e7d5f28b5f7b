"""The read cache: answers kept until the store changes, shared rounding of "now", bounded memory."""

from __future__ import annotations

import gzip
from datetime import timedelta

import pytest

from mapsvc import create_app
from mapsvc.core.policy import DEFAULT_POLICIES
from mapsvc.web.readcache import ENTRY_OVERHEAD_BYTES, Answer, ReadCache
from tests.conftest import BISHKEK, NOW
from tests.helpers import heat_cells, iso, layer_ids, parse_iso, post_device

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


@pytest.mark.parametrize("path", ["/api/layers", "/api/heat"])
def test_a_report_shows_at_the_next_read_after_a_cached_answer(client, path):
    minimum = DEFAULT_POLICIES["raid"].min_count_public
    for hours in range(1, minimum):  # one cell, one event short of showing as heat
        post_device(client, BISHKEK, category="raid", occurred_at=NOW - timedelta(hours=hours))
    before = client.get(path).get_json()
    assert client.get(path).get_json() == before  # a cached answer

    post_device(client, BISHKEK, category="raid", occurred_at=NOW)

    after = client.get(path).get_json()
    assert after != before


def test_a_withdrawn_report_leaves_at_the_next_read(client):
    posted = post_device(client, BISHKEK)
    receipt = posted.get_json()
    assert layer_ids(client) == [posted.event_id]

    client.delete(f"/api/reports/{receipt['id']}", headers={"X-Withdrawal-Code": receipt["withdrawal_code"]})

    assert layer_ids(client) == []


def test_a_write_through_another_worker_shows_at_once(other_client, client):
    """Each worker keeps its own cache; the store's version tells every worker of a write."""
    other = other_client()
    assert layer_ids(client) == []  # cached empty

    created = post_device(other, BISHKEK).event_id

    assert layer_ids(client) == [created]


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
    cache = ReadCache(max_bytes=4 * (900 + ENTRY_OVERHEAD_BYTES) + 100)  # room for four
    for i in range(10):
        cache.put(i, Answer.of(bytes(900)))
    assert cache.get(0) is None
    assert cache.get(9) == Answer.of(bytes(900))
    assert sum(cache.get(i) is not None for i in range(10)) == 4


def test_one_huge_answer_is_not_kept():
    cache = ReadCache(max_bytes=4000)
    cache.put("small", Answer.of(b"x"))
    cache.put("huge", Answer.of(bytes(3000)))
    assert cache.get("huge") is None
    assert cache.get("small") == Answer.of(b"x")


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


@pytest.mark.parametrize("setting", [{"READ_CACHE_S": -1}, {"READ_CACHE_S": "ten"}, {"READ_CACHE_MB": -5}])
def test_bad_cache_settings_are_refused_naming_them(app_config, setting):
    with pytest.raises(ValueError, match="READ_CACHE"):
        create_app({**app_config, **setting})
