"""Administrative districts: checking a boundary file's features and placing count atoms in them.

Districts partition the city differently from H3 cells. To keep one set of atoms behind every
output (``mapsvc.core.counts``), a district's count is the sum of the published atoms whose
*cell centre* lies in it; an atom cell is never split. A district total is therefore a sum of
published atoms (0 or at least the minimum count), and no district figure can be combined with a
cell figure to recover a hidden atom. Near a boundary an event may be counted in the
neighbouring district: the price of consistency, and smaller than the fuzzing noise at the
default resolution.

The file is read by :mod:`mapsvc.services.boundaries`; here are the districts' rules: the
limits a file must keep within, and :func:`districts_of`, which checks what was read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import geopandas as gpd
import h3
import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from mapsvc.core.boundary_rules import Boundaries
from mapsvc.core.boundary_rules import DistrictFileError as DistrictFileError  # callers catch it from here
from mapsvc.core.text import refused_characters

#: Most districts a file may hold.
MAX_DISTRICTS = 2000
#: Most points, rings and polygons in a file, all districts together: 2000 districts of 500 points
#: each. It bounds what parsing a GeoJSON takes, some 190 bytes a point (docs/advocacy.md, on district files).
MAX_POINTS = 1_000_000
#: Largest boundary file read, in bytes: a city's districts in fine detail fit several times over.
MAX_FILE_BYTES = 32 * 1024 * 1024
#: Most bytes of a GeoJSON's strings (names, fields and values): 4 KB a district at the most
#: districts. A parsed string can take four times its text (one emoji makes every character
#: four bytes), so it bounds that as :data:`MAX_POINTS` bounds the parsed numbers and lists.
MAX_TEXT_BYTES = 8 * 1024 * 1024
NAME_MAX_LENGTH = 200
#: Largest absolute longitude and latitude, in degrees.
LONGITUDE_LATITUDE_BOUNDS = np.array([180.0, 90.0])


@dataclass(frozen=True)
class District:
    """A named district polygon in longitude/latitude degrees (EPSG:4326)."""

    name: str
    geometry: Polygon | MultiPolygon


def districts_of(found: Boundaries, name_field: str) -> list[District]:
    """Return the districts of a boundary file's features, reprojected to EPSG:4326.

    Parameters
    ----------
    found : Boundaries
        The features as read (:func:`mapsvc.services.boundaries.read_boundaries`), within the
        limits above.
    name_field : str
        The attribute that held each district's name (for the messages).

    Raises
    ------
    DistrictFileError
        If there are no features or no CRS, or a name is empty, repeated or overlong, a geometry
        is not a polygon, a coordinate is not a finite number, before or after reprojection, or
        a point lies off the globe (longitude beyond ±180°, latitude beyond ±90°).

    """
    if not found.names:
        raise DistrictFileError("the file holds no districts")
    if found.crs is None:
        raise DistrictFileError("the file states no coordinate reference system")
    names = _names(found.names, name_field)
    _refuse_off_the_globe(names, found.geometries, reprojected=False)
    geometries = list(gpd.GeoSeries(found.geometries, crs=found.crs).to_crs(4326))
    _refuse_off_the_globe(names, geometries, reprojected=True)
    return [
        _district(row, name, geometry)
        for row, (name, geometry) in enumerate(zip(names, geometries, strict=True), start=1)
    ]


def _names(raw_names: list[object], name_field: str) -> list[str]:
    """Return the districts' names, refusing an empty, overlong or repeated one."""
    names: list[str] = []
    seen: set[str] = set()
    for row, raw in enumerate(raw_names, start=1):
        name = "" if raw is None else str(raw).strip()
        if not name or name == "nan":
            raise DistrictFileError(f"feature {row}: the field {name_field!r} is empty")
        if refused_characters(name, lines=False):
            raise DistrictFileError(f"feature {row}: the name holds control characters or broken Unicode")
        if len(name) > NAME_MAX_LENGTH:
            raise DistrictFileError(f"feature {row}: the name is longer than {NAME_MAX_LENGTH} characters")
        if name in seen:
            raise DistrictFileError(f"feature {row}: the name {name!r} appears twice")
        seen.add(name)
        names.append(name)
    return names


def _refuse_off_the_globe(names: list[str], geometries: list[BaseGeometry | None], reprojected: bool) -> None:
    """Refuse a NaN or infinite coordinate (GEOS raises on one) and, in degrees, a point off the globe.

    A file's numbers may be absurd (1e300 metres), and reprojecting finite ones can give infinities
    (a UTM easting of 1e10 m), so this runs before and after ``to_crs``.
    """
    for row, (name, geometry) in enumerate(zip(names, geometries, strict=True), start=1):
        points = shapely.get_coordinates(geometry)
        if not reprojected and not np.isfinite(points).all():
            raise DistrictFileError(f"feature {row} ({name}): a coordinate is not a finite number")
        if reprojected and not (np.abs(points) <= LONGITUDE_LATITUDE_BOUNDS).all():  # NaN is refused too
            raise DistrictFileError(
                f"feature {row} ({name}): a point lies beyond longitude -180 to 180 or latitude -90 to 90 once"
                " reprojected to EPSG:4326 (is the file's coordinate reference system right?)"
            )


def _district(row: int, name: str, geometry: BaseGeometry | None) -> District:
    """Return a district of a polygon, repaired if invalid; GEOS's errors name the feature."""
    if not isinstance(geometry, Polygon | MultiPolygon) or geometry.is_empty:
        raise DistrictFileError(f"feature {row} ({name}): the geometry is not a polygon")
    try:
        if not geometry.is_valid:
            geometry = shapely.make_valid(geometry)
    except shapely.errors.ShapelyError:
        raise DistrictFileError(f"feature {row} ({name}): the polygon is invalid and cannot be repaired") from None
    if not isinstance(geometry, Polygon | MultiPolygon):
        raise DistrictFileError(f"feature {row} ({name}): the polygon is invalid and cannot be repaired")
    return District(name, geometry)


def assign_cells(cells: Iterable[str], districts: list[District]) -> dict[str, str | None]:
    """Return, for each H3 cell, the name of the first district holding its centre (None if none)."""
    prepared = [(d.name, d.geometry) for d in districts]
    for _, geometry in prepared:
        shapely.prepare(geometry)
    out: dict[str, str | None] = {}
    for cell in cells:
        lat, lon = h3.cell_to_latlng(cell)
        centre = Point(lon, lat)
        out[cell] = next((name for name, geometry in prepared if geometry.covers(centre)), None)
    return out
