"""Tiles and anonymous reads: what a crawler can make the service fetch, keep, compute and record.

A crawler must not make the tile proxy download the world (and get the service banned by its
tile provider), fill the disk the database lives on, or switch tiles off for everyone with one
odd tile; the cache's file times must not say when someone looked at a place; reads must be
limited per client and must not escape the read cache by spelling a moment or a language anew.
HSTS is sent over https only.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from mapsvc import create_app
from mapsvc.core.area import CITIES
from mapsvc.services import tilecache, tiles
from mapsvc.settings import settings
from mapsvc.web.basemap import build_map
from mapsvc.web.map import api
from mapsvc.web.ogc import views
from mapsvc.web.readcache import Answer, ReadCache
from tests.conftest import BISHKEK, NOW
from tests.helpers import iso, sign_in
from tests.tile_upstream import Upstream, png

KYIV = (CITIES["kyiv"].lat, CITIES["kyiv"].lon)
DAY_S = 86400


def tile_at(z: int, lat: float, lon: float) -> tuple[int, int, int]:
    """Return the tile of zoom ``z`` holding the point."""
    n = 2**z
    row = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(row)


def url(z: int, x: int, y: int) -> str:
    return f"/tiles/{z}/{x}/{y}.png"


def upstream_path(z: int, x: int, y: int) -> str:
    return f"/{z}/{x}/{y}.png"


def cached_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png"))


@pytest.fixture
def upstream():
    server = Upstream()
    yield server
    server.close()


@pytest.fixture
def tile_config(app_config, upstream, tmp_path):
    """Return the test configuration with tiles from the fake upstream, cached in ``tmp_path/tiles``."""
    tiles.reset_upstream_state()
    app_config.update(TILE_URL=upstream.url, TILE_CACHE_DIR=str(tmp_path / "tiles"))
    yield app_config
    tiles.reset_upstream_state()


@pytest.fixture
def tile_client(tile_config, client):
    return client


# --- tiles: only the service area, at the map's zoom levels ------------------------------------


@pytest.mark.parametrize(
    "tile",
    [
        tile_at(15, *KYIV),  # another city
        tile_at(15, BISHKEK[0] + 0.5, BISHKEK[1]),  # 55 km north of the centre, far past the margin
        tile_at(19, *BISHKEK),  # deeper than TILE_MAX_ZOOM
        tile_at(5, *BISHKEK),  # shallower than TILE_MIN_ZOOM
    ],
)
def test_a_tile_outside_the_area_or_zoom_levels_is_refused_and_never_fetched(tile_client, upstream, tile):
    response = tile_client.get(url(*tile))

    assert response.status_code == 404
    assert response.is_json and "outside" in response.get_json()["error"]
    assert upstream.requests == []


def test_the_map_asks_only_for_tiles_the_server_serves(tile_client, upstream):
    """The page's Leaflet loads tiles overlapping the layer's bounds at its zoom levels: all served."""
    app = tile_client.application
    with app.test_request_context():
        m = build_map(app.extensions["mapsvc.settings"].area.bounds, True, "©")
        view = settings().tiles.view
    [layer] = [c for c in m._children.values() if type(c).__name__ == "TileLayer"]
    (south, west), (north, east) = layer.options["bounds"]
    assert (west, south, east, north) == view.box
    assert m.options["max_bounds"] == layer.options["bounds"]
    assert (layer.options["min_zoom"], layer.options["max_zoom"]) == (view.min_zoom, view.max_zoom)
    assert (m.options["min_zoom"], m.options["max_zoom"]) == (view.min_zoom, view.max_zoom)

    for zoom in (view.min_zoom, 13, view.max_zoom):
        _, left, top = tile_at(zoom, north, west)
        _, right, bottom = tile_at(zoom, south, east)
        inside = [(left, top), (right, top), (left, bottom), (right, bottom)]
        outside = [(left - 1, top), (right + 1, bottom), (left, top - 1), (right, bottom + 1)]
        assert [tile_client.get(url(zoom, x, y)).status_code for x, y in inside] == [200] * 4
        assert [tile_client.get(url(zoom, x, y)).status_code for x, y in outside] == [404] * 4


# --- tiles: a bounded cache, with no precise time on its files ---------------------------------


def test_the_cache_stays_under_its_bound_after_many_distinct_tiles(app_config, tmp_path):
    server = Upstream(body=png(4096))
    folder = tmp_path / "tiles"
    bound_mb = 0.05  # 52 KB: about 12 tiles of 4 KB, too few for an overview
    app_config.update(
        TILE_URL=server.url, TILE_CACHE_DIR=str(folder), TILE_CACHE_MAX_MB=bound_mb, TILE_OVERVIEW_MAX_TILES=0
    )
    tiles.reset_upstream_state()
    app = create_app(app_config)
    client = app.test_client()
    z, x, y = tile_at(16, *BISHKEK)
    try:
        wanted = [(z, x + i, y + j) for i in range(8) for j in range(5)]  # 40 tiles, 160 KB
        statuses = [client.get(url(*t)).status_code for t in wanted]
    finally:
        server.close()
        app.extensions["mapsvc.store"].dispose()

    kept = cached_files(folder)
    assert statuses == [200] * len(wanted)
    assert sum(p.stat().st_size for p in kept) <= bound_mb * 2**20
    assert folder / str(z) / str(x + 7) / f"{y + 4}.png" in kept  # the last one fetched stays
    assert len(kept) >= 6  # pruned to below the bound, not emptied


def test_workers_keep_to_one_bound_together(tmp_path):
    """Each gunicorn worker has its own TileCache; the running size they add to lives in the folder."""
    from mapsvc.services.tilecache import TileCache

    folder = tmp_path / "tiles"
    workers = [TileCache(folder, 40_000), TileCache(folder, 40_000)]
    for i in range(12):  # 96 KB in all, half through each
        workers[i % 2].store(16, 47000 + i, 24000, png(8192))

    on_disk = sum(p.stat().st_size for p in cached_files(folder))
    assert on_disk <= 40_000
    assert workers[0].size() == workers[1].size() == on_disk


def _coarse(seconds: float) -> bool:
    return seconds % DAY_S == 0 and time.time() - DAY_S < seconds <= time.time()


def test_cached_tiles_and_their_folders_keep_only_the_day(tile_client, tmp_path):
    z, x, y = tile_at(18, *BISHKEK)  # a street, at 03:12 say
    assert tile_client.get(url(z, x, y)).status_code == 200
    path = tmp_path / "tiles" / str(z) / str(x) / f"{y}.png"
    assert tile_client.get(url(z, x, y)).status_code == 200  # served from the cache: a read

    locks = tmp_path / "tiles" / ".locks"  # taken for the fetch (not listed here: that would set its atime)
    lock_files = [locks / str(number) for number in range(tilecache.FETCH_LOCKS)]
    for item in (path, path.parent, path.parent.parent, tmp_path / "tiles", locks, *lock_files):
        info = item.stat()
        assert _coarse(info.st_mtime), item
        assert _coarse(info.st_atime), item  # the read did not set the access time


# --- tiles: which upstream failures switch tiles off, and for how long ------------------------


def test_a_404_for_one_tile_leaves_tiles_on_while_a_5xx_switches_them_off(tile_client, upstream, monkeypatch):
    monkeypatch.setattr(tiles, "FIRST_BACKOFF_S", 60.0, raising=False)  # the test's steps take no time
    z, x, y = tile_at(15, *BISHKEK)
    missing, other, broken, after = (z, x, y), (z, x + 1, y), (z, x + 2, y), (z, x + 3, y)
    upstream.statuses = {upstream_path(*missing): 404, upstream_path(*broken): 500}

    assert tile_client.get(url(*missing)).status_code == 404
    assert tile_client.get(url(*other)).status_code == 200  # the 404 concerned one tile
    assert tile_client.get(url(*broken)).status_code == 503
    down = tile_client.get(url(*after))

    assert down.status_code == 503 and down.is_json and int(down.headers["Retry-After"]) >= 1
    assert upstream.requests == [upstream_path(*t) for t in (missing, other, broken)]  # not asked for `after`


class Clock:
    """``time`` as the tiles module sees it: the real one, moved on by ``ahead`` seconds."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead

    def time(self) -> float:
        return time.time() + self.ahead


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_one_connection_error_switches_tiles_off_for_seconds_not_a_minute(tile_config, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(tiles, "time", clock)
    port = closed_port()
    app = create_app({**tile_config, "TILE_URL": f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png"})
    client = app.test_client()
    z, x, y = tile_at(15, *BISHKEK)

    assert client.get(url(z, x, y)).status_code == 503
    back = Upstream(port=port)  # the upstream is back, at the address the settings name
    try:
        assert client.get(url(z, x + 1, y)).status_code == 503  # still backing off
        clock.ahead = 5.0

        assert client.get(url(z, x + 1, y)).status_code == 200
        assert back.requests == [upstream_path(z, x + 1, y)]
    finally:
        back.close()
        app.extensions["mapsvc.store"].dispose()


# --- tiles: misses are rate-limited --------------------------------------------------------------


def test_tile_misses_are_limited_per_client_and_for_everyone(tile_config, upstream):
    tile_config.update(
        RATELIMIT_ENABLED=True, TILE_MISS_RATE_LIMIT="3 per minute", TILE_UPSTREAM_RATE_LIMIT="5 per minute"
    )
    app = create_app(tile_config)
    client = app.test_client()
    z, x, y = tile_at(17, *BISHKEK)

    def get(address: str, column: int):  # type: ignore[no-untyped-def]
        return client.get(url(z, column, y), environ_base={"REMOTE_ADDR": address})

    crawler = [get("203.0.113.1", x + i) for i in range(4)]
    again = get("203.0.113.1", x)  # in the cache: served whatever the limit
    others = [get("203.0.113.2", x + 10), get("203.0.113.2", x + 11), get("203.0.113.3", x + 12)]
    app.extensions["mapsvc.store"].dispose()

    assert [r.status_code for r in crawler] == [200, 200, 200, 429]
    refused = crawler[3]
    assert refused.is_json and "error" in refused.get_json() and int(refused.headers["Retry-After"]) >= 1
    assert again.status_code == 200
    assert [r.status_code for r in others] == [200, 200, 429]  # everyone's 5 are spent
    assert len(upstream.requests) == 5


@pytest.mark.parametrize(
    ("zoom", "everyone"),
    [(15, "TILE_OVERVIEW_RATE_LIMIT"), (17, "TILE_UPSTREAM_RATE_LIMIT")],
    ids=["overview", "deep"],
)
def test_a_tile_asked_for_by_many_at_once_is_fetched_once_and_counted_once(tile_config, zoom, everyone):
    server = Upstream(delay_s=0.5)
    limits = {"TILE_MISS_RATE_LIMIT": "7 per minute", everyone: "7 per minute"}
    app = create_app({**tile_config, "TILE_URL": server.url, "RATELIMIT_ENABLED": True, **limits})
    z, x, y = tile_at(zoom, *BISHKEK)
    start = threading.Barrier(6)
    statuses: list[int] = []

    def ask() -> None:
        client = app.test_client()  # a browser of its own; the workers of a host behave alike
        start.wait()
        statuses.append(client.get(url(z, x, y)).status_code)

    try:
        askers = [threading.Thread(target=ask) for _ in range(6)]
        for asker in askers:
            asker.start()
        for asker in askers:
            asker.join()
        fetched_once = list(server.requests)
        server.delay_s = 0.0
        others = [app.test_client().get(url(z, x + i, y)).status_code for i in (-3, -2, -1, 1, 2, 3, 4)]
    finally:
        server.close()
        app.extensions["mapsvc.store"].dispose()

    assert statuses == [200] * 6
    assert fetched_once == [upstream_path(z, x, y)]
    assert others == [200] * 6 + [429]  # the six waiting took none of the seven misses


# --- tiles: a crawler cannot take the map away from peers ---------------------------------------
#
# The default area (Bishkek and 3 km) has 1,089 tiles at zoom 8 to 15, the overview, and 60,910 at
# zoom 16 to 18, where a crawl spends the upstream budget.

OVERVIEW = [tile_at(z, *BISHKEK) for z in (8, 12, 15)]


def peer_get(client, address: str, tile: tuple[int, int, int]) -> int:  # type: ignore[no-untyped-def]
    return int(client.get(url(*tile), environ_base={"REMOTE_ADDR": address}).status_code)


def test_spending_the_deep_budget_leaves_the_overview_fetchable(tile_config, upstream):
    app = create_app({**tile_config, "RATELIMIT_ENABLED": True, "TILE_UPSTREAM_RATE_LIMIT": "4 per day"})
    client = app.test_client()
    z, x, y = tile_at(18, *BISHKEK)
    crawl = [peer_get(client, f"203.0.113.{i}", (z, x + i, y)) for i in range(5)]  # five addresses

    peer = "198.51.100.7"
    overview = [peer_get(client, peer, tile) for tile in OVERVIEW]  # none cached yet
    cached_deep = peer_get(client, peer, (z, x, y))
    uncached_deep = peer_get(client, peer, (z, x + 9, y))
    app.extensions["mapsvc.store"].dispose()

    assert crawl == [200] * 4 + [429]
    assert overview == [200] * 3
    assert cached_deep == 200
    assert uncached_deep == 429  # the map shows its plain background there
    assert len(upstream.requests) == 4 + 3


def test_one_address_fetches_fewer_of_the_deepest_tiles_and_keeps_the_overview(tile_config, upstream):
    limits = {"TILE_MISS_RATE_LIMIT": "4 per day", "TILE_DEEP_MISS_RATE_LIMIT": "2 per day"}
    app = create_app({**tile_config, "RATELIMIT_ENABLED": True, "TILE_DEEP_MIN_ZOOM": 17, **limits})
    client = app.test_client()
    crawler = "203.0.113.1"
    z, x, y = tile_at(18, *BISHKEK)
    z16, x16, y16 = tile_at(16, *BISHKEK)

    deepest = [peer_get(client, crawler, (z, x + i, y)) for i in range(3)]
    deep = [peer_get(client, crawler, (z16, x16 + i, y16)) for i in range(3)]
    overview = [peer_get(client, crawler, tile) for tile in OVERVIEW]  # a count of their own
    app.extensions["mapsvc.store"].dispose()

    assert deepest == [200, 200, 429]
    assert deep == [200, 200, 429]  # 4 in all: 2 at zoom 18, 2 at 16
    assert overview == [200] * 3


def _per(limit: str, unit: str) -> int:
    """Return what ``limit`` allows in one ``unit`` (the tightest of its windows that fit in one)."""
    from limits import parse_many

    lengths = {"minute": 60, "hour": 3600, "day": 86400}
    return min(
        math.ceil(lengths[unit] / item.get_expiry()) * item.amount
        for item in parse_many(limit)
        if item.get_expiry() <= lengths[unit]
    )


@pytest.mark.parametrize(("unit", "addresses"), [("hour", 4), ("day", 8)])
def test_by_default_many_addresses_are_needed_to_spend_the_deep_budget(unit, addresses):
    """The arithmetic of docs/map.md: one address (or IPv6 /64) gets a fraction of everyone's budget."""
    from mapsvc.config import DEFAULTS

    one = _per(DEFAULTS["TILE_MISS_RATE_LIMIT"], unit)
    everyone = _per(DEFAULTS["TILE_UPSTREAM_RATE_LIMIT"], unit)

    assert one * addresses <= everyone
    assert _per(DEFAULTS["TILE_DEEP_MISS_RATE_LIMIT"], unit) * 2 <= one


def age(path: Path, days: int) -> None:
    """Date a cached tile ``days`` UTC days back, as if fetched then."""
    day = time.time() // DAY_S * DAY_S - days * DAY_S
    os.utime(path, (day, day))


def test_a_crawl_of_deep_tiles_does_not_evict_the_overview(app_config, tmp_path):
    server = Upstream(body=png(16384))
    folder = tmp_path / "tiles"
    bound_mb = 0.5  # 512 KB: about 32 tiles of 16 KB
    app_config.update(
        TILE_URL=server.url, TILE_CACHE_DIR=str(folder), TILE_CACHE_MAX_MB=bound_mb, TILE_OVERVIEW_MAX_ZOOM=9
    )
    tiles.reset_upstream_state()
    app = create_app(app_config)
    client = app.test_client()
    overview = [tile_at(z, *BISHKEK) for z in (8, 9)]
    z, x, y = tile_at(18, *BISHKEK)
    try:
        assert [client.get(url(*t)).status_code for t in overview] == [200, 200]
        for tile in overview:  # looked at for weeks: fetched long ago
            age(folder / "{}/{}/{}.png".format(*tile), 20)
        crawl = [client.get(url(z, x + i, y + j)).status_code for i in range(8) for j in range(5)]  # 640 KB
    finally:
        server.close()
        app.extensions["mapsvc.store"].dispose()

    kept = cached_files(folder)
    assert crawl == [200] * 40
    assert [folder / "{}/{}/{}.png".format(*t) in kept for t in overview] == [True, True]
    assert sum(p.stat().st_size for p in kept) <= bound_mb * 2**20


def test_eviction_removes_the_deepest_zoom_first_and_the_oldest_day_within_it(tmp_path):
    from mapsvc.services.tilecache import TileCache

    cache = TileCache(tmp_path / "tiles", 50_000)
    days_ago = {(17, 1, 1): 9, (18, 1, 1): 0, (18, 1, 2): 2, (18, 1, 3): 1}
    for tile, days in days_ago.items():
        cache.store(*tile, png(10_000))
        age(cache.path(*tile), days)
    cache.store(16, 1, 1, png(10_000))  # 50 KB: at the bound
    cache.store(15, 1, 1, png(10_000))  # 60 KB: pruned to 45 KB at most, two tiles deleted

    left = {(int(p.parts[-3]), int(p.parts[-2]), int(p.stem)) for p in cached_files(tmp_path / "tiles")}
    assert left == {(15, 1, 1), (16, 1, 1), (17, 1, 1), (18, 1, 1)}  # zoom 18's two oldest went


def test_a_cache_bound_too_small_for_the_overview_is_refused(app_config):
    with pytest.raises(ValueError, match="TILE_CACHE_MAX_MB") as refused:
        create_app({**app_config, "TILE_CACHE_MAX_MB": 16})

    message = str(refused.value)
    assert "1089 tiles" in message and "TILE_OVERVIEW_MAX_ZOOM" in message
    assert "74." not in message and "42." not in message  # says nothing of where the area lies


# --- HSTS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api/layers", "/ogc?f=json"])
def test_hsts_is_sent_over_https_only(client, path):
    secure = client.get(path, base_url="https://localhost")
    plain = client.get(path, base_url="http://localhost")

    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in plain.headers


# --- anonymous reads: limited per client ---------------------------------------------------------

READS = ["/api/layers", "/api/heat", "/ogc/collections/checkpoint/items?f=json", "/ogc/collections?f=json"]


@pytest.fixture
def limited(app_config):
    app = create_app({**app_config, "RATELIMIT_ENABLED": True, "READ_RATE_LIMIT": "6 per minute"})
    yield app
    app.extensions["mapsvc.store"].dispose()


def test_anonymous_reads_are_limited_per_client(limited):
    client = limited.test_client()
    one, two = {"REMOTE_ADDR": "203.0.113.7"}, {"REMOTE_ADDR": "203.0.113.8"}

    statuses = [client.get(READS[i % len(READS)], environ_base=one).status_code for i in range(6)]
    refused = client.get("/api/layers", environ_base=one)
    head = client.head("/api/heat", environ_base=one)

    assert statuses == [200] * 6
    assert refused.status_code == 429 and refused.is_json and int(refused.headers["Retry-After"]) >= 1
    assert head.status_code == 429
    assert client.get("/api/layers", environ_base=two).status_code == 200


def test_signed_in_staff_read_without_the_anonymous_limit(limited):
    client = limited.test_client()
    spent = [client.get("/api/layers").status_code for _ in range(7)]
    sign_in(client, limited, "moderator")  # from the same address

    assert spent == [200] * 6 + [429]
    assert [client.get("/api/layers").status_code for _ in range(10)] == [200] * 10


# --- the read cache: one entry per answer, however the query is spelled ----------------------


@pytest.fixture
def builds(monkeypatch):
    """Count the answers computed (not served from the read cache), per endpoint."""
    counts = {"layers": 0, "items": 0}

    def counting(name, build):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            counts[name] += 1
            return build(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(api, "_layers_body", counting("layers", api._layers_body))
    monkeypatch.setattr(views, "_items_body", counting("items", views._items_body))
    return counts


def test_moments_that_draw_the_same_map_share_one_cached_answer(client, builds):
    base = NOW - timedelta(hours=1)
    spellings = [
        iso(base),
        iso(base + timedelta(seconds=1)),
        (base + timedelta(seconds=2, microseconds=500_000)).isoformat(),
        (base + timedelta(seconds=9, microseconds=999_999)).isoformat(),
        (base + timedelta(hours=6, seconds=4)).isoformat().replace("+00:00", "+06:00"),
    ]

    answers = {client.get("/api/layers", query_string={"at": at}).get_json()["at"] for at in spellings}

    assert answers == {iso(base)}
    assert builds["layers"] == 1


def test_since_within_one_bucket_step_shares_one_cached_answer(client, builds):
    hour = NOW.replace(minute=0) - timedelta(days=1)
    for minutes in (1, 10, 20, 59):
        since = hour + timedelta(minutes=minutes)
        assert client.get("/api/layers", query_string={"since": iso(since)}).status_code == 200

    assert builds["layers"] == 1


def test_any_lang_value_shares_the_cached_answer_of_its_language(client, builds):
    items = "/ogc/collections/checkpoint/items"
    junk = ["en", "zz", "zz-1", "<script>", "x" * 200]
    bodies = [client.get(items, query_string={"f": "json", "lang": lang}).get_json() for lang in junk]
    repeated = client.get(f"{items}?f=json&lang=zz&lang=zz2").get_json()
    russian = client.get(items, query_string={"f": "json", "lang": "ru"}).get_json()

    assert builds["items"] == 2  # English (whatever was asked) and Russian
    assert all(body == bodies[0] for body in [*bodies, repeated])
    assert russian != bodies[0]


def test_many_tiny_answers_cannot_outgrow_the_cache():
    cache = ReadCache(max_bytes=64 * 1024, stale_s=5)
    for i in range(10_000):
        cache.put(("layers", i), Answer.of(b"{}"))

    assert sum(cache.get(("layers", i)) is not None for i in range(10_000)) <= 64
