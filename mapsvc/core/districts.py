"""Administrative districts: reading boundary files and placing count atoms in them.

Districts partition the city differently from H3 cells. To keep one set of atoms behind every
output (``mapsvc.core.counts``), a district's count is the sum of the published atoms whose
*cell centre* lies in it; an atom cell is never split. A district total is therefore a sum of
published atoms (0 or at least the minimum count), and no district figure can be combined with a
cell figure to recover a hidden atom. Near a boundary an event may be counted in the
neighbouring district: the price of consistency, and smaller than the fuzzing noise at the
default resolution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import geopandas as gpd
import h3
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from mapsvc.core.boundary_files import DistrictFileError as DistrictFileError  # callers catch it from here
from mapsvc.core.boundary_files import read_boundaries, read_bounded

#: Most districts a file may hold.
MAX_DISTRICTS = 2000
#: Most points, rings and polygons in a file, all districts together: 2000 districts of 500 points
#: each. It bounds what parsing a GeoJSON takes, some 190 bytes a point (README, "District files").
MAX_POINTS = 1_000_000
#: Largest boundary file read, in bytes: a city's districts in fine detail fit several times over.
MAX_FILE_BYTES = 32 * 1024 * 1024
NAME_MAX_LENGTH = 200


@dataclass(frozen=True)
class District:
    """A named district polygon in longitude/latitude degrees (EPSG:4326)."""

    name: str
    geometry: Polygon | MultiPolygon


def read_districts(source: Path | BinaryIO, name_field: str = "name", layer: str | None = None) -> list[District]:
    """Read districts from a GeoJSON or GeoPackage file, reprojected to EPSG:4326.

    Parameters
    ----------
    source : Path or binary stream
        The file, or its bytes (an upload held in memory); its format is found from its bytes
        (see :mod:`mapsvc.core.boundary_files`), never by GDAL.
    name_field : str
        The attribute holding each district's name (unique, non-empty).
    layer : str, optional
        The layer of a GeoPackage with several.

    Raises
    ------
    DistrictFileError
        If the file is larger than :data:`MAX_FILE_BYTES`, neither GeoJSON nor GeoPackage, lacks
        the name field, has no CRS, holds non-polygons, empty or duplicate names, more than
        :data:`MAX_DISTRICTS` districts or :data:`MAX_POINTS` points (found before the rest is read).

    """
    data = read_bounded(source, MAX_FILE_BYTES)
    found = read_boundaries(data, name_field, layer, MAX_DISTRICTS, MAX_POINTS)
    if not found.names:
        raise DistrictFileError("the file holds no districts")
    if found.crs is None:
        raise DistrictFileError("the file states no coordinate reference system")
    geometries = gpd.GeoSeries(found.geometries, crs=found.crs).to_crs(4326)
    return _districts(found.names, list(geometries), name_field)


def _districts(names: list[object], geometries: list[BaseGeometry | None], name_field: str) -> list[District]:
    found: list[District] = []
    seen: set[str] = set()
    for row, (raw, geometry) in enumerate(zip(names, geometries, strict=True), start=1):
        name = "" if raw is None else str(raw).strip()
        if not name or name == "nan":
            raise DistrictFileError(f"feature {row}: the field {name_field!r} is empty")
        if len(name) > NAME_MAX_LENGTH:
            raise DistrictFileError(f"feature {row}: the name is longer than {NAME_MAX_LENGTH} characters")
        if name in seen:
            raise DistrictFileError(f"feature {row}: the name {name!r} appears twice")
        if not isinstance(geometry, Polygon | MultiPolygon) or geometry.is_empty:
            raise DistrictFileError(f"feature {row} ({name}): the geometry is not a polygon")
        if not geometry.is_valid:
            geometry = shapely.make_valid(geometry)
            if not isinstance(geometry, Polygon | MultiPolygon):
                raise DistrictFileError(f"feature {row} ({name}): the polygon is invalid and cannot be repaired")
        seen.add(name)
        found.append(District(name, geometry))
    return found


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
