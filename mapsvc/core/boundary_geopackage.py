"""GeoPackages read with Python's sqlite3 and shapely alone: neither GDAL nor PROJ sees the file.

GDAL's GPKG driver hands the CRS definition a GeoPackage stores (``gpkg_spatial_ref_sys``) to
PROJ, and a WKT definition naming a grid (``PARAMETERFILE["...", "/any/path"]``, or a URL) makes
PROJ open that file, or, with its network on, fetch that URL. So nothing here interprets text
from the file:

- sqlite3 opens the bytes in memory, never to be written (``query_only``), after checking that
  the schema holds no SQL that reading would run (views, virtual tables other than spatial
  indexes, generated columns);
- the layer is a feature table of ``gpkg_contents``, its geometry column that of
  ``gpkg_geometry_columns``; every identifier comes from the schema and is quoted;
- each geometry is the standard GeoPackage binary (header, envelope, ISO WKB). The WKB is walked
  first, to be a Polygon or MultiPolygon of polygons within the points budget, and only then
  built by shapely: GEOS's WKB reader recurses into nested collections without limit (a
  MultiPolygon whose part is 50,000 nested collections, 450 KB, crashes the process);
- the CRS is the layer's organisation and code, which must be EPSG's; the definition is never read.
"""

from __future__ import annotations

import re
import sqlite3
import struct
from contextlib import closing

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from mapsvc.core.boundary_rules import (
    UNREADABLE,
    Boundaries,
    DistrictFileError,
    no_field,
    plane_crs,
    too_detailed,
)

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


def read_geopackage(data: bytes, name_field: str, layer: str | None, limit: int, max_points: int) -> Boundaries:
    """Return the names, polygons and CRS of a layer's first ``limit`` features (in row order).

    Raises
    ------
    DistrictFileError
        If the file is damaged or holds SQL that reading would run, the layer or the name field
        is missing, a geometry is not a polygon, or the points pass ``max_points``.

    """
    try:
        with closing(_open(data)) as connection:
            _refuse_executable_schema(connection)
            table, column, srs_id = _layer(connection, layer)
            fields = _fields(connection, table, column)
            if name_field not in fields:
                raise no_field(name_field, fields)
            rows = connection.execute(
                f"SELECT {_quoted(name_field)}, {_quoted(column)} FROM {_quoted(table)} ORDER BY rowid LIMIT ?",
                (limit,),
            ).fetchall()
            crs = _crs(connection, srs_id)
    except sqlite3.DatabaseError as exc:
        raise DistrictFileError(
            f"{UNREADABLE}: the GeoPackage is damaged or incomplete ({type(exc).__name__})"
        ) from None
    return Boundaries([name for name, _ in rows], _geometries([blob for _, blob in rows], max_points), crs)


def _open(data: bytes) -> sqlite3.Connection:
    """Return a connection to the bytes in memory that may only read."""
    connection = sqlite3.connect(":memory:")
    connection.deserialize(_rollback_journal(data))
    connection.execute("PRAGMA query_only = ON")
    connection.execute("PRAGMA trusted_schema = OFF")
    return connection


def _rollback_journal(data: bytes) -> bytes:
    """Mark a write-ahead-log database (QGIS leaves GeoPackages so) as the single file it now is."""
    if data[18:20] == b"\x02\x02":
        return data[:18] + b"\x01\x01" + data[20:]
    return data


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _refuse_executable_schema(connection: sqlite3.Connection) -> None:
    """Refuse views, virtual tables other than spatial indexes and generated columns: reading runs their SQL."""
    objects = connection.execute("SELECT name, type FROM pragma_table_list WHERE schema = 'main'").fetchall()
    for name, kind in objects:  # kinds as SQLite parsed the schema, whatever sqlite_master's type column says
        if kind == "view":
            raise DistrictFileError(
                f"{UNREADABLE}: the GeoPackage holds a view (SQL run on reading); only tables are read"
            )
        if kind == "virtual":
            query = "SELECT sql FROM sqlite_master WHERE name = ? AND type = 'table'"
            text = connection.execute(query, (name,)).fetchone()
            if text is None or not RTREE.fullmatch(text[0] or ""):
                raise DistrictFileError(
                    f"{UNREADABLE}: the GeoPackage holds a virtual table other than a spatial index"
                )
        else:
            hidden = connection.execute("SELECT hidden FROM pragma_table_xinfo(?)", (name,)).fetchall()
            if any(flag in (2, 3) for (flag,) in hidden):
                raise DistrictFileError(f"{UNREADABLE}: the GeoPackage holds generated columns (SQL run on reading)")


def _layer(connection: sqlite3.Connection, layer: str | None) -> tuple[str, str, object]:
    """Return the feature table asked for (or the only one), its geometry column and its srs_id."""
    tables = {
        table: (column, srs_id)
        for table, column, srs_id in connection.execute(
            "SELECT c.table_name, g.column_name, g.srs_id FROM gpkg_contents c"
            " JOIN gpkg_geometry_columns g ON g.table_name = c.table_name"
            " WHERE lower(c.data_type) = 'features' ORDER BY c.table_name"
        )
        if isinstance(table, str) and isinstance(column, str)  # SQLite stores any type in any column
    }
    if layer is not None:
        if layer not in tables:
            raise DistrictFileError(f"no layer {layer!r} in the GeoPackage (layers: {', '.join(tables)})")
        return layer, *tables[layer]
    if not tables:
        raise DistrictFileError("the GeoPackage holds no layer of features")
    if len(tables) > 1:
        raise DistrictFileError(f"the GeoPackage holds several layers ({', '.join(tables)}): name the one to read")
    table, (column, srs_id) = next(iter(tables.items()))
    return table, column, srs_id


def _fields(connection: sqlite3.Connection, table: str, column: str) -> list[str]:
    """Return a table's fields but its primary key and geometry; refuse a layer that is no table of its own."""
    found = connection.execute("SELECT type FROM pragma_table_list WHERE schema = 'main' AND name = ?", (table,))
    columns = connection.execute("SELECT name, pk FROM pragma_table_info(?)", (table,)).fetchall()
    if found.fetchone() != ("table",) or column not in [name for name, _ in columns]:
        raise DistrictFileError(f"{UNREADABLE}: the GeoPackage's layer {table!r} is not a table with its geometry")
    return [name for name, pk in columns if not pk and name != column]


def _crs(connection: sqlite3.Connection, srs_id: object) -> CRS | None:
    """Return the CRS of the layer's EPSG code, never reading the definition stored with it."""
    query = "SELECT organization, organization_coordsys_id FROM gpkg_spatial_ref_sys WHERE srs_id = ?"
    row = connection.execute(query, (srs_id,)).fetchone()
    if row is None:
        return None
    organization, code = row
    if not isinstance(organization, str) or organization.lower() != "epsg" or not isinstance(code, int):
        raise DistrictFileError(
            "the layer's coordinate reference system has no EPSG code;"
            " save the layer in an EPSG one (such as EPSG:4326 or a UTM zone) and upload it again"
        )
    return plane_crs(code, "the layer's coordinate reference system")


def _geometries(blobs: list[object], max_points: int) -> list[BaseGeometry | None]:
    """Return each blob's polygon, checking them all (and the points budget) before building any."""
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
