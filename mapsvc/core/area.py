"""The service area: where reports are accepted and where published points may lie."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box, shape
from shapely.ops import nearest_points

from mapsvc.core.fuzz import round_coordinate
from mapsvc.core.geodesy import local_projection, widened_box

#: Clamped points are moved this far inside the boundary, so that rounding to 4 decimals
#: (at most about 8 m) cannot push them back out.
CLAMP_MARGIN_M = 20.0


@dataclass(frozen=True)
class City:
    """A named place the demo and the default configuration know."""

    key: str
    name: str
    lat: float
    lon: float
    bounds: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat
    timezone: str


CITIES: dict[str, City] = {
    c.key: c
    for c in (
        City("bishkek", "Bishkek", 42.8746, 74.5698, (74.45, 42.80, 74.72, 42.93), "Asia/Bishkek"),
        City("osh", "Osh", 40.5283, 72.7985, (72.72, 40.48, 72.86, 40.58), "Asia/Bishkek"),
        City("kyiv", "Kyiv", 50.4501, 30.5234, (30.24, 50.32, 30.83, 50.59), "Europe/Kyiv"),
        City("nairobi", "Nairobi", -1.2864, 36.8172, (36.65, -1.44, 37.10, -1.16), "Africa/Nairobi"),
        City("copenhagen", "Copenhagen", 55.6761, 12.5683, (12.45, 55.61, 12.65, 55.73), "Europe/Copenhagen"),
    )
}


class ServiceArea:
    """A polygon in WGS84 longitude/latitude with metric helpers.

    Parameters
    ----------
    geometry : Polygon or MultiPolygon
        The area, in longitude/latitude degrees (EPSG:4326).

    """

    def __init__(self, geometry: Polygon | MultiPolygon) -> None:
        if not isinstance(geometry, Polygon | MultiPolygon):
            raise TypeError("the service area must be a Polygon or MultiPolygon")
        if geometry.is_empty or not geometry.is_valid:
            raise ValueError("the service area must be a valid, non-empty polygon")
        self.geometry = geometry
        shapely.prepare(self.geometry)
        centre = geometry.centroid
        self._to_metric, self._to_degrees = local_projection(centre.y, centre.x)
        self._metric = shapely.transform(geometry, self._to_metric, interleaved=False)  # type: ignore[arg-type]
        inner = self._metric.buffer(-CLAMP_MARGIN_M)
        self._inner_metric = inner if not inner.is_empty else self._metric
        self.is_box = bool(geometry.equals(box(*geometry.bounds)))

    @classmethod
    def from_config(cls, value: Any) -> ServiceArea:
        """Build the area from a city key, a bbox list, or a GeoJSON geometry mapping."""
        if isinstance(value, str):
            if value not in CITIES:
                raise ValueError(f"unknown city {value!r}; known: {sorted(CITIES)}")
            return cls(box(*CITIES[value].bounds))
        if isinstance(value, list | tuple) and len(value) == 4:
            min_lon, min_lat, max_lon, max_lat = (float(v) for v in value)
            return cls(box(min_lon, min_lat, max_lon, max_lat))
        if isinstance(value, Mapping):
            geometry = shape(value.get("geometry", value))
            if not isinstance(geometry, Polygon | MultiPolygon):
                raise ValueError("the service area GeoJSON must be a Polygon or MultiPolygon")
            return cls(geometry)
        raise ValueError("SERVICE_AREA must be a city key, a [minLon, minLat, maxLon, maxLat] list or GeoJSON")

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Return (min lon, min lat, max lon, max lat)."""
        minx, miny, maxx, maxy = self.geometry.bounds
        return (minx, miny, maxx, maxy)

    def contains(self, lat: float, lon: float) -> bool:
        """Return whether the point lies in the area (boundary included)."""
        return bool(self.geometry.covers(Point(lon, lat)))

    def distance_m(self, lat: float, lon: float) -> float:
        """Return the distance in metres from the point to the area (0 inside)."""
        if self.contains(lat, lon):
            return 0.0
        x, y = self._to_metric(lon, lat)
        return float(self._metric.distance(Point(x, y)))

    def widened_bounds(self, margin_m: float) -> tuple[float, float, float, float]:
        """Return (min lon, min lat, max lon, max lat) widened by about ``margin_m`` metres on each side.

        In degrees, so that clients can be told them exactly; conservative
        (:func:`mapsvc.core.geodesy.widened_box`): the margin is at least ``margin_m`` everywhere, the
        longitude margin being that of the latitude nearest a pole.
        """
        return widened_box(self.bounds, margin_m)

    def near(self, lat: float, lon: float, margin_m: float) -> bool:
        """Return whether the point lies within ``margin_m`` of the area.

        Within :meth:`widened_bounds` (square corners: a box area's rule is a box); for an area
        that is not a box, also no further than ``margin_m`` from it.
        """
        west, south, east, north = self.widened_bounds(margin_m)
        if not (south <= lat <= north and west <= lon <= east):
            return False
        return self.is_box or self.distance_m(lat, lon) <= margin_m

    def clamp(self, lat: float, lon: float) -> tuple[float, float]:
        """Return the published point: rounded, and moved inside the area if it fell outside.

        Only ever applied to an already fuzzed point, so it leaks nothing about the truth.
        """
        rounded = (round_coordinate(lat), round_coordinate(lon))
        if self.contains(*rounded):
            return rounded
        x, y = self._to_metric(lon, lat)
        nearest = nearest_points(self._inner_metric, Point(x, y))[0]
        lon2, lat2 = self._to_degrees(nearest.x, nearest.y)
        moved = (round_coordinate(lat2), round_coordinate(lon2))
        if self.contains(*moved):
            return moved
        fallback = self.geometry.representative_point()
        return round_coordinate(fallback.y), round_coordinate(fallback.x)
