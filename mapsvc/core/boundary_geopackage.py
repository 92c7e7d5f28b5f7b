"""GeoPackage contents checked and built with shapely alone: neither GDAL nor PROJ sees the file.

GDAL's GPKG driver hands the CRS definition a GeoPackage stores (``gpkg_spatial_ref_sys``) to
PROJ, and a WKT definition naming a grid (``PARAMETERFILE["...", "/any/path"]``, or a URL) makes
PROJ open that file, or, with its network on, fetch that URL. So nothing interprets text from the
file. Its tables are read by :mod:`mapsvc.services.boundaries`, with Python's sqlite3 over the
bytes in memory; here are the pure checks of what it finds there:

- the only virtual table a GeoPackage may hold is a spatial index, exactly as the standard writes
  it (:func:`is_spatial_index`);
- each geometry is the standard GeoPackage binary (header, envelope, ISO WKB). The WKB is walked
  first, to be a Polygon or MultiPolygon of polygons within the points budget, and only then
  built by shapely: GEOS's WKB reader recurses into nested collections without limit (a
  MultiPolygon whose part is 50,000 nested collections, 450 KB, crashes the process)
  (:func:`geometries`);
- the CRS is the layer's organisation and code, which must be EPSG's; the definition is never
  read (:func:`layer_crs`).
"""

from __future__ import annotations

import re
import struct

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from mapsvc.core.boundary_rules import DistrictFileError, plane_crs, too_detailed

#: The only virtual table a GeoPackage may hold: a spatial index, exactly as the standard writes it.
_IDENTIFIER = r'(?:"(?:[^"]|"")+"|`(?:[^`]|``)+`|\[[^\]]+\]|\w+)'
RTREE = re.compile(
    rf"CREATE VIRTUAL TABLE\s+{_IDENTIFIER}\s+USING\s+rtree\s*\(\s*"
    r"id\s*,\s*minx\s*,\s*maxx\s*,\s*miny\s*,\s*maxy\s*\)\s*",
    re.IGNORECASE,
)
#: Envelope bytes by the envelope code of a GeoPackage geometry header's flags (bits 1-3).
ENVELOPE_BYTES = (0, 32, 48, 48, 64)
POLYGON, MULTIPOLYGON = 3, 6
#: Coordinates per point by an ISO WKB type's thousands: XY, XYZ, XYM, XYZM.
DIMENSIONS = (2, 3, 3, 4)


def is_spatial_index(sql: str | None) -> bool:
    """Return whether a virtual table's ``CREATE`` statement is a spatial index's, exactly as the standard writes it."""
    return RTREE.fullmatch(sql or "") is not None


def layer_crs(organization: object, code: object) -> CRS:
    """Return the CRS of a layer's organisation and code (``gpkg_spatial_ref_sys``), which must be EPSG's.

    The definition stored with them is never read: PROJ would open any grid file or URL it names.

    Raises
    ------
    DistrictFileError
        If the organisation is not EPSG, or the code is no 2D geographic or projected CRS of EPSG's.

    """
    if not isinstance(organization, str) or organization.lower() != "epsg" or not isinstance(code, int):
        raise DistrictFileError(
            "the layer's coordinate reference system has no EPSG code;"
            " save the layer in an EPSG one (such as EPSG:4326 or a UTM zone) and upload it again"
        )
    return plane_crs(code, "the layer's coordinate reference system")


def geometries(blobs: list[object], max_points: int) -> list[BaseGeometry | None]:
    """Return each GeoPackage geometry blob's polygon, checking them all (and the points budget) before building any.

    A blob that is None (no geometry) gives None; anything else must be a standard GeoPackage
    geometry of a Polygon or MultiPolygon, or it is refused, naming its row (from 1).
    """
    walk = _Walk(max_points)
    starts = [None if blob is None else walk.polygonal(blob, row) for row, blob in enumerate(blobs, start=1)]
    return [_polygon(blob, start, row) for row, (blob, start) in enumerate(zip(blobs, starts, strict=True), start=1)]


def _polygon(blob: object, start: int | None, row: int) -> BaseGeometry | None:
    if start is None or not isinstance(blob, bytes):
        return None
    try:
        with np.errstate(invalid="ignore"):  # a NaN coordinate: refused by the caller, naming the feature
            return shapely.from_wkb(blob[start:])
    except shapely.errors.ShapelyError:  # a ring of fewer than 4 points, say
        raise DistrictFileError(f"feature {row}: the geometry is not a valid polygon") from None


def _wkb_start(blob: bytes, row: int) -> int:
    """Return where a GeoPackage geometry's WKB starts, after its header and envelope."""
    if len(blob) < 8 or blob[:2] != b"GP" or blob[2] != 0:
        raise DistrictFileError(f"feature {row}: the geometry is not a GeoPackage geometry")
    flags = blob[3]
    if flags & 0b10_0000:
        raise DistrictFileError(f"feature {row}: the geometry is an extended GeoPackage geometry, which is not read")
    envelope = (flags >> 1) & 0b111
    if envelope >= len(ENVELOPE_BYTES):
        raise DistrictFileError(f"feature {row}: the geometry's header is damaged")
    return 8 + ENVELOPE_BYTES[envelope]


class _Walk:
    """A pass over ISO WKB reading only its counts, to check a polygon's shape and size before GEOS does.

    Each polygon, ring and point spends one of the budget, over all the features.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.spent = 0
        self.wkb, self.offset, self.row, self.order = b"", 0, 0, "<"

    def polygonal(self, blob: object, row: int) -> int:
        """Return where a geometry's WKB starts, once checked to be a Polygon or a MultiPolygon of them."""
        if not isinstance(blob, bytes):
            raise DistrictFileError(f"feature {row}: the geometry is not a GeoPackage geometry")
        start = _wkb_start(blob, row)
        self.wkb, self.offset, self.row = blob, start, row
        kind, dimensions = self._geometry_type()
        if kind == MULTIPOLYGON:
            for _ in range(self._count()):
                kind, dimensions = self._geometry_type()
                self._polygon(kind, dimensions)
        else:
            self._polygon(kind, dimensions)
        return start

    def _geometry_type(self) -> tuple[int, int]:
        """Read a byte order and a type: return the base type and the coordinates per point."""
        self._need(5)
        if self.wkb[self.offset] not in (0, 1):
            raise self._damaged()
        self.order = "<" if self.wkb[self.offset] else ">"
        self.offset += 1
        code = self._count()
        if code // 1000 >= len(DIMENSIONS):  # EWKB flags, or no ISO type at all
            raise self._damaged()
        return code % 1000, DIMENSIONS[code // 1000]

    def _polygon(self, kind: int, dimensions: int) -> None:
        """Pass over a polygon's rings."""
        if kind != POLYGON:
            raise DistrictFileError(f"feature {self.row}: the geometry is not a polygon")
        self._spend(1)
        for _ in range(self._count()):
            points = self._count()
            self._spend(1 + points)
            self._need(points * dimensions * 8)
            self.offset += points * dimensions * 8

    def _count(self) -> int:
        """Read an unsigned 32-bit integer in the geometry's byte order."""
        self._need(4)
        (value,) = struct.unpack_from(self.order + "I", self.wkb, self.offset)
        self.offset += 4
        return int(value)

    def _spend(self, points: int) -> None:
        self.spent += points
        if self.spent > self.budget:
            raise too_detailed(self.budget)

    def _need(self, size: int) -> None:
        if self.offset + size > len(self.wkb):
            raise self._damaged()

    def _damaged(self) -> DistrictFileError:
        return DistrictFileError(f"feature {self.row}: the geometry is damaged")
