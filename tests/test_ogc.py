"""OGC API – Features: the documents, the items equal to the public layers, filters, paging, suppression."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from openapi_spec_validator import validate

from mapsvc.core.policy import DEFAULT_POLICIES
from tests.conftest import BISHKEK, NOW
from tests.helpers import bucket_of, iso, post_device

LAT, LON = BISHKEK
HOUR = timedelta(hours=1)
MARKER_CATEGORIES = [name for name, p in DEFAULT_POLICIES.items() if p.public_markers]


def _get(client, path: str, status: int = 200, **params: Any) -> Any:  # type: ignore[no-untyped-def]
    response = client.get(path, query_string=params or None)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    return response.get_json()


def _items(client, collection: str, **params: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return _get(client, f"/ogc/collections/{collection}/items", **params)


def _ids(body: dict[str, Any]) -> list[str]:
    return [f["id"] for f in body["features"]]


def _link(body: dict[str, Any], rel: str) -> str | None:
    found = [link["href"] for link in body["links"] if link["rel"] == rel]
    return found[0] if found else None


def _follow(client, href: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    parts = urlsplit(href)
    return _get(client, parts.path + "?" + parts.query)


def _spread(client, count: int, category: str = "checkpoint", hours_ago: float = 0.5) -> None:  # type: ignore[no-untyped-def]
    """Post ``count`` reports on a grid of points farther apart than any merge distance (up to 25)."""
    for i in range(count):
        point = (LAT - 0.04 + 0.01 * (i // 5), LON - 0.03 + 0.015 * (i % 5))
        post_device(client, point, category, NOW - hours_ago * HOUR)


def test_landing_page_links_the_api_conformance_and_data(client):
    body = _get(client, "/ogc")
    rels = {link["rel"]: urlsplit(link["href"]).path for link in body["links"]}
    assert rels["service-desc"] == "/ogc/api"
    assert rels["conformance"] == "/ogc/conformance"
    assert rels["data"] == "/ogc/collections"
    conforms = _get(client, "/ogc/conformance")["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conforms
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conforms


def test_collections_are_the_categories_the_public_map_shows_as_events(client):
    body = _get(client, "/ogc/collections")
    assert [c["id"] for c in body["collections"]] == MARKER_CATEGORIES
    assert "attack" not in MARKER_CATEGORIES
    raid = _get(client, "/ogc/collections/raid")
    assert raid["extent"]["spatial"]["bbox"][0][0] < LON < raid["extent"]["spatial"]["bbox"][0][2]
    assert {link["rel"] for link in raid["links"]} >= {"self", "items"}


def test_items_are_exactly_what_the_public_layers_show(client):
    _spread(client, 6, "checkpoint", 0.5)
    _spread(client, 4, "raid", 30)
    _spread(client, 3, "extortion", 24 * 5)
    _spread(client, 5, "attack", 3)
    post_device(client, (LAT, LON), "checkpoint", NOW - 20 * HOUR)  # faded: on no live layer
    layers = _get(client, "/api/layers")
    listed = []
    for name in MARKER_CATEGORIES:
        items = _items(client, name, limit=1000)
        assert items["features"] == _get(client, "/api/layers", category=name)["features"]
        assert items["numberMatched"] == items["numberReturned"] == len(items["features"])
        listed += items["features"]
    assert sorted(listed, key=lambda f: f["id"]) == sorted(layers["features"], key=lambda f: f["id"])
    assert len(listed) == 13


def test_paging_walks_every_event_once(client):
    _spread(client, 25)
    page = _items(client, "checkpoint", limit=10)
    seen, pages = _ids(page), 1
    assert _link(page, "prev") is None
    while (href := _link(page, "next")) is not None:
        page = _follow(client, href)
        assert page["numberMatched"] == 25
        assert _link(page, "prev") is not None
        seen += _ids(page)
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 25
    assert set(seen) == set(_ids(_items(client, "checkpoint", limit=100)))
    middle = _items(client, "checkpoint", limit=10, offset=10)
    assert "offset=0" in (_link(middle, "prev") or "")


def test_bbox_filters_as_the_layers_do(client):
    _spread(client, 20)
    box = f"{LON - 0.02},{LAT - 0.025},{LON + 0.02},{LAT + 0.0}"
    items = _items(client, "checkpoint", bbox=box)
    assert 0 < items["numberMatched"] < 20
    assert _ids(items) == [f["id"] for f in _get(client, "/api/layers", bbox=box, category="checkpoint")["features"]]
    six = f"{LON - 0.02},{LAT - 0.025},0,{LON + 0.02},{LAT + 0.0},100"
    assert _ids(_items(client, "checkpoint", bbox=six)) == _ids(items)


@pytest.fixture
def raids(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Raids 2 h, 30 h and 20 days ago (the last faded from the live map: horizon about 13 days)."""
    made = {}
    for label, hours in (("recent", 2), ("yesterday", 30), ("old", 24 * 20)):
        response = post_device(client, (LAT, LON + 0.01 * hours / 24), "raid", NOW - hours * HOUR)
        made[label] = response.event_id
    return made


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (None, {"recent", "yesterday"}),
        ("../..", {"recent", "yesterday", "old"}),
        (lambda: iso(bucket_of(NOW - 30 * HOUR, "raid") + timedelta(minutes=10)), {"yesterday"}),
        (lambda: iso(NOW - 3 * 24 * HOUR) + "/..", {"recent", "yesterday"}),
        (lambda: "../" + iso(NOW - 10 * 24 * HOUR), {"old"}),
        (lambda: "/" + iso(NOW - 10 * 24 * HOUR), {"old"}),
        (lambda: (NOW - 20 * 24 * HOUR).strftime("%Y-%m-%d"), {"old"}),
        (lambda: iso(NOW + HOUR) + "/..", set()),
    ],
)
def test_datetime_selects_events_by_their_time_bucket(client, raids, when, expected):
    params = {} if when is None else {"datetime": when if isinstance(when, str) else when()}
    assert set(_ids(_items(client, "raid", **params))) == {raids[label] for label in expected}


def test_historic_items_carry_their_weight_now(client, raids):
    old = _get(client, f"/ogc/collections/raid/items/{raids['old']}")
    assert old["properties"]["weight"] == 0.01  # 2^(-20/3), rounded as the layers round
    assert old["properties"]["bucket_start"] == iso(bucket_of(NOW - 24 * 20 * HOUR, "raid"))


def test_single_events_shown_only_as_heat_never_appear(client):
    attacks = [post_device(client, (LAT, LON), "attack", NOW - h * HOUR).event_id for h in (1, 50)]
    post_device(client, (LAT, LON), "raid", NOW - HOUR)
    _get(client, "/ogc/collections/attack", 404)
    _get(client, "/ogc/collections/attack/items", 404)
    for name in MARKER_CATEGORIES:
        for params in ({}, {"datetime": "../.."}):
            features = _items(client, name, limit=1000, **params)["features"]
            assert not {f["id"] for f in features} & set(attacks)
            assert all(f["properties"]["category"] == name for f in features)
        for attack in attacks:
            _get(client, f"/ogc/collections/{name}/items/{attack}", 404)


@pytest.fixture
def app_config(app_config):  # type: ignore[no-untyped-def]
    app_config["CATEGORY_OVERRIDES"] = {"detention": {"premoderation": True}}
    return app_config


def test_events_waiting_for_a_moderator_are_not_listed(client):
    held = post_device(client, (LAT, LON), "detention", NOW - HOUR).event_id
    assert _items(client, "detention", datetime="../..")["features"] == []
    _get(client, f"/ogc/collections/detention/items/{held}", 404)


def test_a_single_item_is_the_listed_feature(client):
    _spread(client, 3)
    listed = _items(client, "checkpoint")["features"][1]
    item = _get(client, f"/ogc/collections/checkpoint/items/{listed['id']}")
    assert {k: item[k] for k in ("type", "id", "geometry", "properties")} == listed
    _get(client, "/ogc/collections/raid/items/" + listed["id"], 404)
    _get(client, "/ogc/collections/checkpoint/items/no-such-event", 404)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"foo": "1"}, "foo"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "74.6,42.8,74.5,42.9"}, "bbox"),
        ({"datetime": "yesterday"}, "datetime"),
        ({"datetime": "2026-06-10T00:00:00Z/2026-06-01T00:00:00Z"}, "datetime"),
        ({"datetime": "2026-06-01/2026-06-02/2026-06-03"}, "datetime"),
        ({"datetime": ".."}, "datetime"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"f": "xml"}, "f"),
    ],
)
def test_bad_parameters_are_answered_400_naming_them(client, params, field):
    body = _get(client, "/ogc/collections/checkpoint/items", 400, **params)
    assert body["field"] == field


def test_unknown_collection_is_404(client):
    assert "error" in _get(client, "/ogc/collections/nothing", 404)
    _get(client, "/ogc/collections/nothing/items", 404)


def test_the_api_definition_is_valid_openapi_3_0(client):
    response = client.get("/ogc/api")
    assert response.mimetype == "application/vnd.oai.openapi+json"
    document = response.get_json()
    assert document["openapi"].startswith("3.0")
    validate(document)
    assert "/collections/{collectionId}/items" in document["paths"]


@pytest.mark.parametrize(
    ("path", "headers", "html"),
    [
        ("/ogc/collections/checkpoint/items?f=html", {}, True),
        ("/ogc/collections", {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, True),
        ("/ogc/collections", {"Accept": "application/json"}, False),
        ("/ogc/collections/checkpoint/items", {}, False),
    ],
)
def test_html_for_browsers_json_for_clients(client, path, headers, html):
    _spread(client, 2)
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    assert (response.mimetype == "text/html") is html
