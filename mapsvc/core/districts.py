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

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import geopandas as gpd
import h3
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

#: Most districts a file may hold.
MAX_DISTRICTS = 2000
NAME_MAX_LENGTH = 200


class DistrictFileError(ValueError):
    """A boundary file cannot be used; the message says why."""


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
        The file, or its bytes (an upload held in memory); its format is found by GDAL.
    name_field : str
        The attribute holding each district's name (unique, non-empty).
    layer : str, optional
        The layer of a GeoPackage with several.

    Raises
    ------
    DistrictFileError
        If the file cannot be read, lacks the name field, has no CRS, holds non-polygons,
        empty or duplicate names, or too many districts.

    """
    try:
        with warnings.catch_warnings():
            # Bytes are read through an in-memory GDAL file without a name's extension, so
            # GDAL remarks that a GeoPackage's file "extension" is not .gpkg; it reads it all the same.
            warnings.filterwarnings("ignore", "File /vsimem/.* non conformant file extension", RuntimeWarning)
            frame = gpd.read_file(source, layer=layer) if layer else gpd.read_file(source)
    except Exception as exc:  # GDAL's errors vary by driver; the file is what is wrong
        name = source.name if isinstance(source, Path) else "the file"
        raise DistrictFileError(f"cannot read {name} as GeoJSON or GeoPackage: {type(exc).__name__}") from exc
    if len(frame) == 0:
        raise DistrictFileError("the file holds no districts")
    if len(frame) > MAX_DISTRICTS:
        raise DistrictFileError(f"the file holds more than {MAX_DISTRICTS} districts")
    if name_field not in frame.columns:
        fields = ", ".join(str(c) for c in frame.columns if c != frame.geometry.name)
        raise DistrictFileError(f"no field {name_field!r} for the district names (fields: {fields})")
    if frame.crs is None:
        raise DistrictFileError("the file states no coordinate reference system")
    frame = frame.to_crs(4326)
    return _districts(frame[name_field].tolist(), list(frame.geometry), name_field)


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
