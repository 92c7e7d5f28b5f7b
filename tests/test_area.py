import math
import random

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Point, box, mapping

from mapsvc.core.area import CITIES, CLAMP_MARGIN_M, ServiceArea
from mapsvc.core.geodesy import geodesic_distance_m

BISHKEK_BOUNDS = (74.45, 42.80, 74.72, 42.93)

#: An L-shaped area: the bounding box minus its north-east quarter (not convex).
L_SHAPE = {
    "type": "Polygon",
    "coordinates": [
        [[74.45, 42.80], [74.72, 42.80], [74.72, 42.86], [74.58, 42.86], [74.58, 42.93], [74.45, 42.93], [74.45, 42.80]]
    ],
}

#: Two separate boxes.
TWO_BOXES = mapping(MultiPolygon([box(30.24, 50.32, 30.40, 50.45), box(30.60, 50.40, 30.83, 50.59)]))


def area_of(kind):
    return {
        "bishkek": ServiceArea.from_config("bishkek"),
        "l_shape": ServiceArea.from_config(L_SHAPE),
        "two_boxes": ServiceArea.from_config(TWO_BOXES),
    }[kind]


def is_rounded(value):
    return value == round(value, 4)


# --- building the area -------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(CITIES))
def test_city_key_gives_the_city_box(key):
    assert ServiceArea.from_config(key).bounds == pytest.approx(CITIES[key].bounds)


@pytest.mark.parametrize("key", sorted(CITIES))
def test_city_centre_is_inside_its_area(key):
    city = CITIES[key]
    assert ServiceArea.from_config(key).contains(city.lat, city.lon)


@pytest.mark.parametrize("value", [list(BISHKEK_BOUNDS), BISHKEK_BOUNDS, [str(v) for v in BISHKEK_BOUNDS]])
def test_bbox_gives_a_box(value):
    assert ServiceArea.from_config(value).bounds == pytest.approx(BISHKEK_BOUNDS)


@pytest.mark.parametrize("value", [L_SHAPE, {"type": "Feature", "properties": {}, "geometry": L_SHAPE}, TWO_BOXES])
def test_geojson_gives_its_geometry(value):
    area = ServiceArea.from_config(value)
    expected = value.get("geometry", value)
    assert area.geometry.equals(ServiceArea.from_config(expected).geometry)
    assert area.geometry.geom_type == expected["type"]


@pytest.mark.parametrize(
    "value",
    [
        "atlantis",
        "",
        "Bishkek",
        [74.45, 42.80, 74.72],
        [74.45, 42.80, 74.72, 42.93, 0.0],
        ["west", 42.80, 74.72, 42.93],
        [74.45, 42.80, 74.45, 42.93],  # zero width
        {"type": "Point", "coordinates": [74.57, 42.87]},
        {"type": "LineString", "coordinates": [[74.45, 42.80], [74.72, 42.93]]},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},  # self-crossing
        None,
        42,
    ],
)
def test_bad_config_is_rejected(value):
    with pytest.raises((ValueError, TypeError)):
        ServiceArea.from_config(value)


@pytest.mark.parametrize("geometry", [Point(74.57, 42.87), box(0, 0, 1, 1).exterior, None])
def test_non_polygon_geometry_is_rejected(geometry):
    with pytest.raises(TypeError):
        ServiceArea(geometry)


# --- contains and distance ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [
        (42.8746, 74.5698, True),
        (42.80, 74.60, True),  # on the southern edge
        (42.80, 74.45, True),  # on a corner
        (42.7999, 74.60, False),
        (42.90, 74.80, False),
        (74.5698, 42.8746, False),  # lat and lon swapped
    ],
)
def test_contains_includes_the_boundary(lat, lon, inside):
    assert ServiceArea.from_config("bishkek").contains(lat, lon) is inside


@pytest.mark.parametrize(("lat", "lon"), [(42.90, 74.65), (42.88, 74.70)])
def test_contains_follows_a_non_convex_outline(lat, lon):
    area = ServiceArea.from_config(L_SHAPE)
    assert area.bounds == pytest.approx(BISHKEK_BOUNDS)
    assert not area.contains(lat, lon)


def test_distance_inside_is_zero():
    assert ServiceArea.from_config("bishkek").distance_m(42.8746, 74.5698) == 0.0


@pytest.mark.parametrize(
    ("lat", "lon", "edge"),
    [
        (42.87, 74.75, (42.87, 74.72)),  # east
        (42.87, 74.40, (42.87, 74.45)),  # west
        (42.95, 74.60, (42.93, 74.60)),  # north
        (42.70, 74.60, (42.80, 74.60)),  # south
        (42.95, 74.75, (42.93, 74.72)),  # beyond the north-east corner
    ],
)
def test_distance_outside_is_geodesic_distance_to_the_edge(lat, lon, edge):
    expected = float(geodesic_distance_m(lat, lon, *edge))
    assert ServiceArea.from_config("bishkek").distance_m(lat, lon) == pytest.approx(expected, rel=0.005)


# --- clamping ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("lat", "lon"), [(42.87461234, 74.56981234), (42.8000049, 74.6000001), (42.80, 74.45)])
def test_clamp_inside_only_rounds(lat, lon):
    assert ServiceArea.from_config("bishkek").clamp(lat, lon) == (round(lat, 4), round(lon, 4))


def outside_points(area, n, seed):
    rng = random.Random(seed)
    min_lon, min_lat, max_lon, max_lat = area.bounds
    points = []
    while len(points) < n:
        lat = rng.uniform(min_lat - 0.05, max_lat + 0.05)
        lon = rng.uniform(min_lon - 0.05, max_lon + 0.05)
        if not area.contains(lat, lon):
            points.append((lat, lon))
    return points


@pytest.mark.parametrize("kind", ["bishkek", "l_shape", "two_boxes"])
def test_clamped_point_is_inside_and_rounded(kind):
    area = area_of(kind)
    for lat, lon in outside_points(area, 200, seed=1):
        clamped = area.clamp(lat, lon)
        assert area.contains(*clamped), (lat, lon)
        assert all(is_rounded(v) for v in clamped)


@pytest.mark.parametrize("kind", ["bishkek", "l_shape", "two_boxes"])
def test_clamped_point_is_the_nearest_inside(kind):
    area = area_of(kind)
    # Inside by the margin, then rounding to 4 decimals moves it by at most ~8 m.
    slack = CLAMP_MARGIN_M + 8.0
    for lat, lon in outside_points(area, 200, seed=2):
        moved = float(geodesic_distance_m(lat, lon, *area.clamp(lat, lon)))
        gap = area.distance_m(lat, lon)
        assert gap * (1 - 0.005) <= moved <= gap * (1 + 0.005) + slack, (lat, lon)


def test_clamp_goes_to_the_nearer_of_two_parts():
    area = ServiceArea.from_config(TWO_BOXES)
    # Between the boxes, nearer the western one's eastern edge.
    lat, lon = area.clamp(50.42, 30.45)
    assert box(30.24, 50.32, 30.40, 50.45).covers(Point(lon, lat))


def test_clamp_of_a_far_point_lands_inside():
    area = ServiceArea.from_config("bishkek")
    lat, lon = area.clamp(0.0, 0.0)
    assert area.contains(lat, lon)
    assert math.isfinite(lat) and math.isfinite(lon)


def test_clamp_is_stable():
    area = ServiceArea.from_config("bishkek")
    points = np.array([area.clamp(lat, lon) for lat, lon in outside_points(area, 50, seed=3)])
    again = np.array([area.clamp(lat, lon) for lat, lon in points])
    np.testing.assert_array_equal(points, again)


# --- near the area (points fuzzed on the device) ------------------------------------------------


def test_widened_bounds_reach_at_least_the_margin_everywhere():
    area = ServiceArea.from_config("bishkek")
    west, south, east, north = area.widened_bounds(1000)

    assert geodesic_distance_m(north, 74.6, 42.93, 74.6) >= 1000
    assert geodesic_distance_m(42.93, east, 42.93, 74.72) >= 1000  # the northern edge: the narrowest degree
    assert north - 42.93 < 0.01 and east - 74.72 < 0.02  # and not much more
    assert (west, south) == (74.45 - (east - 74.72), 42.80 - (north - 42.93))


def test_near_a_box_is_its_widened_box_corners_included():
    area = ServiceArea.from_config("bishkek")
    west, south, east, north = area.widened_bounds(1000)

    assert area.near(north, east, 1000) and area.near(south, west, 1000)
    assert not area.near(north + 1e-9, 74.6, 1000) and not area.near(42.85, east + 1e-9, 1000)


def test_near_a_polygon_is_within_the_margin_of_it():
    area = ServiceArea.from_config(L_SHAPE)  # the north-east quarter of the box is outside

    assert area.near(42.8746, 74.5698, 1000)
    assert area.near(42.865, 74.65, 1000)  # about 560 m north of the inner edge at 42.86
    assert not area.near(42.92, 74.70, 1000)  # in the box's missing quarter, far from the area
