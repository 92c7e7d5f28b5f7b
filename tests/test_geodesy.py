"""The Earth's constants and the degrees for metres: conservative ones never too few, nominal ones about right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mapsvc.core.geodesy import (
    EQUATORIAL_RADIUS_M,
    MIN_METRES_PER_DEGREE,
    NOMINAL_METRES_PER_DEGREE,
    degrees_of_latitude,
    degrees_of_longitude,
    equirectangular_m,
    flat_offset,
    geodesic_distance_m,
    move_geodesic,
    widened_box,
)


def test_the_constants_are_what_their_names_say():
    meridian = [float(geodesic_distance_m(lat, 0.0, lat + 1.0, 0.0)) for lat in range(-90, 90)]
    equator = float(geodesic_distance_m(0.0, 0.0, 0.0, 1.0))

    assert MIN_METRES_PER_DEGREE <= min(meridian) < MIN_METRES_PER_DEGREE + 1  # the fewest, rounded down
    assert equator > MIN_METRES_PER_DEGREE  # a degree of longitude at the equator has more
    assert pytest.approx(2 * math.pi * EQUATORIAL_RADIUS_M / 360, abs=1) == NOMINAL_METRES_PER_DEGREE
    assert equator == pytest.approx(NOMINAL_METRES_PER_DEGREE, abs=1)


@pytest.mark.parametrize("lat", [0.0, 42.87, -55.7, 80.0])
def test_a_widened_point_holds_every_point_within_the_distance(lat):
    rng = np.random.default_rng(7)
    for distance in rng.uniform(1, 20_000, size=20):
        west, south, east, north = widened_box((74.57, lat, 74.57, lat), distance)
        bearings = np.arange(0, 360, 0.5)
        start = np.full(bearings.size, lat), np.full(bearings.size, 74.57)
        lats, lons = move_geodesic(*start, bearings, np.full(bearings.size, distance))

        assert ((south <= lats) & (lats <= north) & (west <= lons) & (lons <= east)).all()
        assert north - lat < 1.001 * degrees_of_latitude(distance)  # not much more
        assert north - lat == pytest.approx(float(lats.max()) - lat, rel=0.011)


def test_the_longitude_margin_is_taken_at_the_latitude_nearest_a_pole():
    west, _, east, _ = widened_box((74.0, 40.0, 75.0, 60.0), 10_000)

    assert 74.0 - west == pytest.approx(east - 75.0)
    assert 74.0 - west == pytest.approx(degrees_of_longitude(10_000, 60.0 + degrees_of_latitude(10_000)))
    assert degrees_of_longitude(1000, 60.0) == pytest.approx(2 * degrees_of_longitude(1000, 0.0))
    assert widened_box((-179.99, -89.99, 179.99, 89.99), 5000) == (-180.0, -90.0, 180.0, 90.0)  # kept on the globe


def test_nominal_degrees_are_about_right():
    lat, lon = flat_offset(42.87, 74.57, 3000.0, -4000.0)

    assert float(geodesic_distance_m(42.87, 74.57, lat, lon)) == pytest.approx(5000, rel=0.005)
    assert degrees_of_latitude(1000, NOMINAL_METRES_PER_DEGREE) < degrees_of_latitude(1000)


def test_equirectangular_metres_are_within_one_per_cent_over_a_city():
    rng = np.random.default_rng(3)
    lats, lons = 42.87 + rng.uniform(-0.1, 0.1, 200), 74.57 + rng.uniform(-0.15, 0.15, 200)
    x, y = equirectangular_m(lons, lats, 74.57, 42.87)

    exact = geodesic_distance_m(np.full(200, 42.87), np.full(200, 74.57), lats, lons)
    np.testing.assert_allclose(np.hypot(x, y), exact, rtol=0.01)
