"""GET /api/layers and /api/heat: decay, moments, filters, suppression, rebuilds, caching."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import h3
import pytest

from mapsvc.core.heat import allowed_resolutions
from mapsvc.core.policy import DEFAULT_POLICIES
from tests.conftest import NOW
from tests.helpers import (
    HOME_CELL,
    bucket_of,
    build_app,
    cell_centre,
    decay,
    heat_cells,
    iso,
    layer_ids,
    post_device,
    read_stale_s_later,
    sibling_cells,
)

HOME = cell_centre(HOME_CELL)
RESOLUTIONS = list(allowed_resolutions())
VIEWS = ["/api/layers", "/api/heat"]
#: Layers round weights to 2 decimals.
WEIGHT_DECIMALS = 0.005 + 1e-9


def rounded(moment: datetime) -> datetime:
    """Return ``moment`` rounded down to the read cache's 10 s, as the API answers a given ``at``."""
    return moment.replace(second=moment.second - moment.second % 10, microsecond=0)


def _horizon(category: str) -> timedelta:
    return timedelta(seconds=DEFAULT_POLICIES[category].horizon_s())


def _features(client, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/layers", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["features"]


# --- decay -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "age"),
    [
        ("checkpoint", timedelta(minutes=30)),
        ("checkpoint", timedelta(hours=3)),
        ("checkpoint", timedelta(hours=7, minutes=15)),
        ("patrol", timedelta(hours=5)),
        ("raid", timedelta(days=1)),
        ("raid", timedelta(days=9)),
        ("extortion", timedelta(days=20)),
    ],
)
def test_event_weight_halves_every_half_life(client, clock, category, age):
    created = post_device(client, HOME, category=category)
    bucket = bucket_of(NOW, category)
    clock.now = bucket + age

    [feature] = _features(client)

    assert feature["id"] == created.event_id
    assert feature["properties"]["weight"] == pytest.approx(decay(clock.now, bucket, category), abs=WEIGHT_DECIMALS)


@pytest.mark.parametrize("category", ["checkpoint", "patrol", "raid", "robbery"])
@pytest.mark.parametrize(("offset", "visible"), [(-timedelta(minutes=1), True), (timedelta(minutes=1), False)])
def test_event_disappears_once_its_weight_falls_below_the_threshold(client, clock, category, offset, visible):
    post_device(client, HOME, category=category)
    clock.now = bucket_of(NOW, category) + _horizon(category) + offset

    features = _features(client)

    assert bool(features) is visible
    assert all(f["properties"]["weight"] >= 0.05 for f in features)


@pytest.mark.parametrize(
    ("at", "visible"),
    [
        (NOW, True),  # as it was when reported
        (bucket_of(NOW, "checkpoint") + timedelta(hours=10), True),  # faded by now, not yet then
        (bucket_of(NOW, "checkpoint") - timedelta(seconds=1), False),  # before it happened
        (bucket_of(NOW, "checkpoint") + _horizon("checkpoint") + timedelta(minutes=1), False),
    ],
)
def test_past_moment_shows_the_map_as_it_was(client, clock, at, visible):
    created = post_device(client, HOME)
    clock.now = NOW + timedelta(days=2)  # long faded

    body = client.get("/api/layers", query_string={"at": iso(at)}).get_json()

    assert body["at"] == iso(rounded(at))  # to READ_CACHE_S, as "now" is
    assert [f["id"] for f in body["features"]] == ([created.event_id] if visible else [])
    if visible:
        expected = decay(rounded(at), bucket_of(NOW, "checkpoint"), "checkpoint")
        assert body["features"][0]["properties"]["weight"] == pytest.approx(expected, abs=WEIGHT_DECIMALS)


def test_a_since_raised_past_at_lists_nothing(client):
    """``since`` is raised to the next start of a bucket (an hour here), which may lie after ``at``."""
    post_device(client, HOME)

    assert _features(client, at=iso(NOW), since=iso(NOW - timedelta(minutes=1))) == []
    assert len(_features(client, at=iso(NOW), since=iso(NOW - timedelta(hours=1)))) == 1


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("ahead", [timedelta(minutes=5, seconds=1), timedelta(hours=2)])
def test_moment_in_the_future_is_refused(client, view, ahead):
    response = client.get(view, query_string={"at": iso(NOW + ahead)})

    assert response.status_code == 400
    assert response.get_json()["field"] == "at"


@pytest.mark.parametrize("view", VIEWS)
def test_moment_within_the_clock_skew_is_now(client, view):
    response = client.get(view, query_string={"at": iso(NOW + timedelta(minutes=4))})

    assert response.status_code == 200
    assert response.get_json()["at"] == iso(NOW)


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("at", ["yesterday", "2026-06-31T00:00:00Z", "1781562600", iso(NOW - timedelta(days=800))])
def test_malformed_or_too_old_moment_is_refused(client, view, at):
    response = client.get(view, query_string={"at": at})

    assert response.status_code == 400
    assert response.get_json()["field"] == "at"


# --- bbox, categories, limit ---------------------------------------------------------------------

EAST = (HOME[0], round(HOME[1] + 0.06, 4))  # about 5 km east


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [
        (f"{HOME[1] - 0.01},{HOME[0] - 0.01},{HOME[1] + 0.01},{HOME[0] + 0.01}", ["home"]),
        (f"{EAST[1] - 0.01},{EAST[0] - 0.01},{EAST[1] + 0.01},{EAST[0] + 0.01}", ["east"]),
        (f"{HOME[1] - 0.01},{HOME[0] - 0.01},{EAST[1] + 0.01},{EAST[0] + 0.01}", ["home", "east"]),
        ("74.0,42.0,74.1,42.1", []),
        (None, ["home", "east"]),
    ],
)
def test_bbox_selects_the_events_inside_it(client, bbox, expected):
    ids = {
        "home": post_device(client, HOME).event_id,
        "east": post_device(client, EAST).event_id,
    }
    params = {"bbox": bbox} if bbox else {}

    assert sorted(layer_ids(client, **params)) == sorted(ids[name] for name in expected)


BAD_BBOXES = [
    "74.5,42.8,74.6",
    "74.5,42.8,74.6,42.9,1",
    "a,b,c,d",
    "74.6,42.8,74.5,42.9",
    "74.5,42.9,74.6,42.8",
    "74.5,42.8,74.5,42.9",
    "NaN,42.8,74.6,42.9",
    "74.5,42.8,inf,42.9",
    "74.5,42.8,181,42.9",
    "74.5,-91,74.6,42.9",
    "74.5;42.8;74.6;42.9",
]


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("bbox", BAD_BBOXES)
def test_bad_bbox_is_refused_naming_it(client, view, bbox):
    response = client.get(view, query_string={"bbox": bbox})

    assert response.status_code == 400
    assert response.get_json()["field"] == "bbox"


@pytest.mark.parametrize(
    ("category", "expected"),
    [("patrol", {"patrol"}), ("checkpoint", {"checkpoint"}), ("checkpoint,patrol", {"checkpoint", "patrol"})],
)
def test_category_filter_selects_events(client, category, expected):
    post_device(client, HOME, category="checkpoint")
    post_device(client, EAST, category="patrol")
    post_device(client, HOME, category="raid")

    features = _features(client, category=category)

    assert {f["properties"]["category"] for f in features} == expected


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("category", ["party", "checkpoint,party", ",", "Checkpoint", "checkpoint;patrol"])
def test_unknown_category_is_refused(client, view, category):
    response = client.get(view, query_string={"category": category})

    assert response.status_code == 400
    assert response.get_json()["field"] == "category"


def _attacks(client, count: int = 3) -> None:
    for k in range(count):
        post_device(client, HOME, category="attack", occurred_at=NOW - timedelta(days=k))


@pytest.mark.parametrize("category", [None, "attack", "attack,checkpoint"])
def test_attacks_never_appear_as_markers(client, category):
    _attacks(client)
    post_device(client, HOME, category="checkpoint")
    params = {"category": category} if category else {}

    body = client.get("/api/layers", query_string=params).get_json()

    assert "attack" in body["heatOnly"]
    assert all(f["properties"]["category"] != "attack" for f in body["features"])
    assert body["numberMatched"] == len(body["features"])


def test_layers_list_no_heat_only_category_unasked(client):
    body = client.get("/api/layers", query_string={"category": "checkpoint"}).get_json()

    assert body["heatOnly"] == []


@pytest.mark.parametrize("category", [None, "attack"])
def test_attacks_count_in_heat(client, category):
    _attacks(client)
    params = {"category": category} if category else {}

    cell = heat_cells(client, **params)[HOME_CELL]

    assert cell["events"] == 3
    expected = sum(decay(NOW, bucket_of(NOW - timedelta(days=k), "attack"), "attack") for k in range(3))
    assert cell["intensity"] == pytest.approx(expected, abs=1e-3)


def _five_events(client) -> list[str]:
    """Post five checkpoints an hour apart, newest first; return their event ids."""
    return [post_device(client, HOME, occurred_at=NOW - timedelta(hours=k)).event_id for k in range(5)]


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_limit_caps_features_and_keeps_the_heaviest(client, limit):
    ids = _five_events(client)

    body = client.get("/api/layers", query_string={"limit": limit}).get_json()

    assert body["numberReturned"] == len(body["features"]) == limit
    assert [f["id"] for f in body["features"]] == ids[:limit]


@pytest.mark.parametrize("limit", [1, 5, 10])
def test_number_matched_counts_every_visible_event(client, limit):
    _five_events(client)

    body = client.get("/api/layers", query_string={"limit": limit}).get_json()

    assert body["numberMatched"] == 5


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "2.5", "10001"])
def test_bad_limit_is_refused(client, limit):
    response = client.get("/api/layers", query_string={"limit": limit})

    assert response.status_code == 400
    assert response.get_json()["field"] == "limit"


@pytest.mark.parametrize("resolution", ["abc", "3", "9", "7.5", "-1", "15"])
def test_bad_resolution_is_refused(client, resolution):
    response = client.get("/api/heat", query_string={"resolution": resolution})

    assert response.status_code == 400
    assert response.get_json()["field"] == "resolution"


# --- heat cells ----------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_heat_cell_is_shown_only_with_three_live_events(client, count):
    for k in range(count):
        post_device(client, HOME, occurred_at=NOW - timedelta(hours=k))

    cells = heat_cells(client)

    assert (HOME_CELL in cells) is (count >= 3)
    if count >= 3:
        assert cells[HOME_CELL]["events"] == count


def test_merged_reports_count_as_one_event_in_heat(client):
    for _ in range(3):
        post_device(client, HOME)  # one bucket, one point: one event
    post_device(client, HOME, occurred_at=NOW - timedelta(hours=1))

    assert HOME_CELL not in heat_cells(client)


def test_faded_events_leave_the_heat_count(client, clock):
    for k in range(3):
        post_device(client, HOME, occurred_at=NOW - timedelta(hours=k))
    clock.now = bucket_of(NOW - timedelta(hours=2), "checkpoint") + _horizon("checkpoint") + timedelta(minutes=1)

    assert HOME_CELL not in heat_cells(client)


HOURS_AGO = [0, 1, 3, 5, 8]


@pytest.mark.parametrize("at_hours_ago", [0, 2, 3])
def test_heat_intensity_is_the_sum_of_decay_weights(client, at_hours_ago):
    for k in HOURS_AGO:
        post_device(client, HOME, occurred_at=NOW - timedelta(hours=k))
    at = NOW - timedelta(hours=at_hours_ago)

    cell = heat_cells(client, at=iso(at))[HOME_CELL]

    buckets = [bucket_of(NOW - timedelta(hours=k), "checkpoint") for k in HOURS_AGO]
    live = [b for b in buckets if b <= at]
    assert cell["events"] == len(live)
    assert cell["intensity"] == pytest.approx(sum(decay(at, b, "checkpoint") for b in live), abs=1e-3)


@pytest.mark.parametrize("at_hours_ago", [0, 2.5, 6.5])
def test_late_report_updates_the_heat_history(client, at_hours_ago):
    on_time, late = [1, 2, 3], [9, 7, 8]
    for k in on_time + late:  # the late ones arrive after newer events are stored
        post_device(client, HOME, occurred_at=NOW - timedelta(hours=k))
    at = NOW - timedelta(hours=at_hours_ago)

    cells = heat_cells(client, at=iso(at))

    live = [b for b in (bucket_of(NOW - timedelta(hours=k), "checkpoint") for k in on_time + late) if b <= at]
    if len(live) < 3:
        assert HOME_CELL not in cells
    else:
        assert cells[HOME_CELL]["events"] == len(live)
        expected = sum(decay(at, b, "checkpoint") for b in live)
        assert cells[HOME_CELL]["intensity"] == pytest.approx(expected, abs=1e-3)


# --- consistent suppression across resolutions and filters -------------------------------------

SIBLINGS = sibling_cells(HOME_CELL, 2)
#: A cell under another resolution-7 parent but the same resolution-6 parent.
_OTHER_R7 = sorted(set(h3.cell_to_children(h3.cell_to_parent(HOME_CELL, 6), 7)) - {h3.cell_to_parent(HOME_CELL, 7)})[0]
FAR_CELL = h3.cell_to_center_child(_OTHER_R7, 8)

#: Live events per (atom cell, category); fewer than 3 must be hidden everywhere.
ATOMS = {
    (HOME_CELL, "checkpoint"): 3,
    (HOME_CELL, "patrol"): 2,
    (HOME_CELL, "attack"): 4,
    (SIBLINGS[0], "checkpoint"): 2,
    (SIBLINGS[0], "patrol"): 3,
    (SIBLINGS[1], "raid"): 5,
    (SIBLINGS[1], "attack"): 1,
    (FAR_CELL, "checkpoint"): 1,
    (FAR_CELL, "raid"): 3,
}
FILTERS = [None, "checkpoint", "patrol", "checkpoint,patrol", "attack", "raid,attack", "checkpoint,raid"]
_STEP = {"checkpoint": timedelta(hours=1), "patrol": timedelta(hours=1), "raid": timedelta(hours=1)}


def _moments(category: str, count: int) -> list:
    step = _STEP.get(category, timedelta(days=1))
    return [NOW - k * step for k in range(count)]


@pytest.fixture(scope="module")
def mixed_heat(tmp_path_factory, migrated_template):
    app = build_app(tmp_path_factory.mktemp("heat"), migrated_template, seed=3)
    client = app.test_client()
    for (cell, category), count in ATOMS.items():
        for moment in _moments(category, count):
            post_device(client, cell_centre(cell), category=category, occurred_at=moment)
    yield client
    app.extensions["mapsvc.store"].dispose()


def _expected(resolution: int, category: str | None) -> dict[str, tuple[int, float]]:
    """Sum the published atoms (3 or more events) of the wanted categories into their parents."""
    wanted = category.split(",") if category else list(DEFAULT_POLICIES)
    out: dict[str, tuple[int, float]] = defaultdict(lambda: (0, 0.0))
    for (cell, cat), count in ATOMS.items():
        if cat in wanted and count >= DEFAULT_POLICIES[cat].min_count_public:
            parent = h3.cell_to_parent(cell, resolution)
            weight = sum(decay(NOW, bucket_of(m, cat), cat) for m in _moments(cat, count))
            events, intensity = out[parent]
            out[parent] = (events + count, intensity + weight)
    return dict(out)


@pytest.mark.parametrize("category", FILTERS)
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_heat_cells_sum_only_published_atoms(mixed_heat, resolution, category):
    params = {"resolution": resolution, **({"category": category} if category else {})}

    cells = heat_cells(mixed_heat, **params)

    expected = _expected(resolution, category)
    assert {c: p["events"] for c, p in cells.items()} == {c: e for c, (e, _) in expected.items()}
    for cell, (_, intensity) in expected.items():
        assert cells[cell]["intensity"] == pytest.approx(intensity, abs=1e-3)


@pytest.mark.parametrize("category", FILTERS)
@pytest.mark.parametrize("resolution", RESOLUTIONS[:-1])
def test_coarse_cell_is_the_sum_of_its_visible_fine_cells(mixed_heat, resolution, category):
    params = {"category": category} if category else {}
    fine = heat_cells(mixed_heat, **params)

    coarse = heat_cells(mixed_heat, resolution=resolution, **params)

    summed: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for cell, props in fine.items():
        parent = h3.cell_to_parent(cell, resolution)
        summed[parent][0] += props["events"]
        summed[parent][1] += props["intensity"]
    assert {c: p["events"] for c, p in coarse.items()} == {c: int(v[0]) for c, v in summed.items()}
    for cell, (_, intensity) in summed.items():
        assert coarse[cell]["intensity"] == pytest.approx(intensity, abs=1e-3 * len(fine))


@pytest.mark.parametrize(
    ("parts", "whole"), [(["checkpoint", "patrol"], "checkpoint,patrol"), (["raid", "attack"], None)]
)
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_category_filters_add_up(mixed_heat, resolution, parts, whole):
    separate = [heat_cells(mixed_heat, resolution=resolution, category=p) for p in parts]
    if whole is None:
        other = [c for c in DEFAULT_POLICIES if c not in parts]
        separate.append(heat_cells(mixed_heat, resolution=resolution, category=",".join(other)))

    together = heat_cells(mixed_heat, resolution=resolution, **({"category": whole} if whole else {}))

    summed: dict[str, int] = defaultdict(int)
    for cells in separate:
        for cell, props in cells.items():
            summed[cell] += props["events"]
    assert {c: p["events"] for c, p in together.items()} == dict(summed)


# --- rebuild and caching -------------------------------------------------------------------------


def _random_history(client, rng: random.Random) -> None:
    """Post server-fuzzed reports around three places at random past moments; withdraw a third."""
    places = [HOME, EAST, cell_centre(FAR_CELL)]
    categories = ["checkpoint", "patrol", "raid", "attack", "robbery"]
    receipts = []
    for _ in range(160):
        lat, lon = rng.choice(places)
        body = {
            "category": rng.choice(categories),
            "lat": lat + rng.gauss(0, 0.002),
            "lon": lon + rng.gauss(0, 0.002),
            "occurred_at": iso(NOW - timedelta(minutes=rng.randrange(0, 4 * 24 * 60))),
        }
        response = client.post("/api/reports", json=body)
        assert response.status_code == 201
        receipts.append(response.get_json())
    for created in rng.sample(receipts, len(receipts) // 3):
        response = client.delete(f"/api/reports/{created['id']}", json={"withdrawal_code": created["withdrawal_code"]})
        assert response.status_code == 204


def _heat_views(client) -> dict[tuple[Any, ...], dict[str, tuple[int, float]]]:
    views = {}
    for resolution in RESOLUTIONS:
        for hours_ago in (0, 7, 30):
            for category in (None, "checkpoint,patrol", "raid,attack,robbery"):
                params = {"resolution": resolution, "at": iso(NOW - timedelta(hours=hours_ago))}
                if category:
                    params["category"] = category
                cells = heat_cells(client, **params)
                views[tuple(params.items())] = {c: (p["events"], p["intensity"]) for c, p in cells.items()}
    return views


def test_heat_rebuild_matches_the_incremental_updates(client, runner):
    _random_history(client, random.Random(7))
    before = _heat_views(client)
    assert any(before.values()), "the random history published no heat cell"

    result = runner.invoke(args=["heat", "rebuild"])
    read_stale_s_later(client.application)

    assert result.exit_code == 0, result.output
    after = _heat_views(client)
    assert {k: {c: e for c, (e, _) in v.items()} for k, v in after.items()} == {
        k: {c: e for c, (e, _) in v.items()} for k, v in before.items()
    }
    for key, cells in before.items():
        for cell, (_, intensity) in cells.items():
            assert after[key][cell][1] == pytest.approx(intensity, abs=2e-3)


@pytest.mark.parametrize("path", ["/api/layers", "/api/heat", "/api/categories", "/api/openapi.json"])
def test_unchanged_view_answers_304(client, path):
    post_device(client, HOME)
    first = client.get(path)
    assert first.status_code == 200 and first.headers.get("ETag")

    second = client.get(path, headers={"If-None-Match": first.headers["ETag"]})

    assert second.status_code == 304
    assert second.data == b""


@pytest.mark.parametrize("path", ["/api/layers", "/api/heat"])
def test_changed_view_answers_200_with_a_new_etag(client, path):
    for k in range(2):
        post_device(client, HOME, occurred_at=NOW - timedelta(hours=k))
    first = client.get(path)
    post_device(client, HOME, occurred_at=NOW - timedelta(hours=2))
    read_stale_s_later(client.application)

    second = client.get(path, headers={"If-None-Match": first.headers["ETag"]})

    assert second.status_code == 200
    assert second.headers["ETag"] != first.headers["ETag"]
