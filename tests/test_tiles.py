"""Map tiles through the service: cached, fetched with our own headers only, checked input."""

from __future__ import annotations

import pytest

from mapsvc import create_app
from mapsvc.core.area import CITIES
from mapsvc.core.tilegrid import meets, overview_depth, tile_box, tile_count, tiles_meeting, widened
from mapsvc.services import tiles
from tests.tile_upstream import Upstream, png

PNG = png()


@pytest.fixture
def upstream(app_config, tmp_path):
    server = Upstream()
    app_config.update(TILE_URL=server.url, TILE_CACHE_DIR=str(tmp_path / "tiles"))
    tiles.reset_upstream_state()
    yield server
    server.close()
    tiles.reset_upstream_state()


def test_a_tile_comes_from_the_upstream_and_then_from_the_cache(upstream, client, tmp_path):
    first = client.get("/tiles/12/2896/1507.png")
    second = client.get("/tiles/12/2896/1507.png")

    assert first.status_code == second.status_code == 200
    assert first.mimetype == "image/png" and first.get_data() == PNG == second.get_data()
    assert upstream.requests == ["/12/2896/1507.png"]
    assert (tmp_path / "tiles" / "12" / "2896" / "1507.png").read_bytes() == PNG


def test_the_upstream_sees_nothing_of_the_client(upstream, client):
    client.get(
        "/tiles/12/2896/1507.png",
        headers={
            "X-Forwarded-For": "203.0.113.9",
            "Cookie": "lang=ru",
            "Accept-Language": "ky",
            "Referer": "http://mapsvc.local/",
            "User-Agent": "PhoneBrowser/1.0",
        },
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )

    [headers] = upstream.headers
    sent = " ".join(f"{k}: {v}" for k, v in headers.items())
    assert headers["User-Agent"].startswith("mapsvc/")
    for leak in ("203.0.113.9", "lang=ru", "ky", "mapsvc.local", "PhoneBrowser", "Cookie", "Referer"):
        assert leak not in sent


@pytest.mark.parametrize(
    "path",
    ["/tiles/20/0/0.png", "/tiles/3/8/0.png", "/tiles/3/0/8.png", "/tiles/-1/0/0.png", "/tiles/a/0/0.png"],
)
def test_bad_tile_coordinates_are_refused_with_json(upstream, client, path):
    response = client.get(path)

    assert 400 <= response.status_code < 500
    assert response.is_json and "error" in response.get_json()
    assert upstream.requests == []


@pytest.fixture
def down_upstream(app_config, tmp_path):
    """Tiles from an upstream that cannot be reached (nothing listens on port 9), cached in ``tmp_path/cache``."""
    app_config.update(
        TILE_URL="http://127.0.0.1:9/{z}/{x}/{y}.png", TILE_TIMEOUT_S=1, TILE_CACHE_DIR=str(tmp_path / "cache")
    )
    tiles.reset_upstream_state()
    yield
    tiles.reset_upstream_state()


def test_an_unreachable_upstream_gives_a_quick_503(down_upstream, client):
    response = client.get("/tiles/12/2896/1507.png")

    assert response.status_code == 503 and response.is_json


def test_a_cached_tile_is_served_while_the_upstream_is_down(down_upstream, client, tmp_path):
    cached = tmp_path / "cache" / "12" / "2896" / "1507.png"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(PNG)

    assert client.get("/tiles/12/2896/1507.png").get_data() == PNG


def test_no_tiles_when_none_are_configured(app_config):
    app = create_app({**app_config, "TILE_URL": ""})
    try:
        assert app.test_client().get("/tiles/12/2896/1507.png").status_code == 404
    finally:
        app.extensions["mapsvc.store"].dispose()


# --- the overview: the zoom levels the cache never evicts ---------------------------------------

BISHKEK_TILES = [2, 2, 4, 9, 20, 63, 221, 768, 3008, 11718, 46184]  # zoom 8 to 18, with the 3 km margin


def test_the_tiles_of_the_default_area_are_counted_per_zoom():
    box = widened(CITIES["bishkek"].bounds, 3000)

    assert [tile_count(z, box) for z in range(8, 19)] == BISHKEK_TILES


@pytest.mark.parametrize("z", [8, 11, 14])
def test_the_count_is_of_the_tiles_the_map_asks_for(z):
    box = widened(CITIES["bishkek"].bounds, 3000)
    columns, rows = tiles_meeting(z, box)
    near = range(columns.start - 3, columns.stop + 3), range(rows.start - 3, rows.stop + 3)

    asked = {(x, y) for x in near[0] for y in near[1] if meets(tile_box(z, x, y), box)}

    assert asked == {(x, y) for x in columns for y in rows}


@pytest.mark.parametrize(("max_tiles", "depth"), [(0, 7), (3, 8), (4, 9), (1088, 14), (1089, 15), (10**6, 18)])
def test_the_overview_is_as_deep_as_its_tile_count_allows(max_tiles, depth):
    box = widened(CITIES["bishkek"].bounds, 3000)

    assert overview_depth(box, 8, 18, max_tiles) == depth


@pytest.mark.parametrize(
    "setting",
    [{"TILE_OVERVIEW_MAX_ZOOM": "15"}, {"TILE_OVERVIEW_MAX_ZOOM": 25}, {"TILE_OVERVIEW_MAX_TILES": -1}],
)
def test_a_bad_overview_setting_is_refused_by_name(app_config, setting):
    with pytest.raises(ValueError, match=next(iter(setting))):
        create_app({**app_config, **setting})


# --- mapsvc tiles seed: the overview fetched once, politely ----------------------------------


@pytest.fixture
def pauses(monkeypatch):
    """Record the seed's pauses instead of sleeping through them."""
    from mapsvc.cli import tiles as seeding

    slept: list[float] = []
    monkeypatch.setattr(seeding, "time", type("Clock", (), {"sleep": staticmethod(slept.append)}))
    return slept


def test_seeding_fetches_each_overview_tile_once_one_at_a_time(upstream, app_config, pauses):
    app = create_app({**app_config, "TILE_OVERVIEW_MAX_ZOOM": 10})
    runner = app.test_cli_runner()
    box = widened(CITIES["bishkek"].bounds, 3000)
    overview = [
        f"/{z}/{x}/{y}.png" for z in (8, 9, 10) for x in tiles_meeting(z, box)[0] for y in tiles_meeting(z, box)[1]
    ]

    first = runner.invoke(args=["tiles", "seed", "--pause", "0.5"])
    again = runner.invoke(args=["tiles", "seed"])
    app.extensions["mapsvc.store"].dispose()

    assert first.exit_code == 0 and "fetched 8" in first.output
    assert again.exit_code == 0 and "fetched 0" in again.output
    assert upstream.requests == overview  # 2 + 2 + 4 tiles, none deeper, none twice
    assert pauses == [0.5] * 8


def test_seeding_stops_when_the_tile_server_fails(app_config, tmp_path, pauses):
    config = {**app_config, "TILE_URL": "http://127.0.0.1:9/{z}/{x}/{y}.png", "TILE_CACHE_DIR": str(tmp_path / "t")}
    tiles.reset_upstream_state()
    app = create_app({**config, "TILE_TIMEOUT_S": 1})

    result = app.test_cli_runner().invoke(args=["tiles", "seed"])
    app.extensions["mapsvc.store"].dispose()
    tiles.reset_upstream_state()

    assert result.exit_code == 1 and "stopped after 0 tiles: the tile server failed" in result.output
    assert pauses == []
