"""Boundary files, read by what their bytes are and never by what GDAL guesses.

GDAL opens anything it has a driver for: a VRT file (XML) reads any local file or SQLite database
and may fetch from other hosts through ``/vsicurl/``, a ``CSV:`` path shows a file's first line
as field names, a zip is opened through ``/vsizip/``. So a boundary file's first bytes decide:

- JSON (text starting with ``{`` or ``[``) must be GeoJSON: parsed as JSON, a FeatureCollection or
  Feature, its shapes built by shapely with no GDAL at all. RFC 7946 GeoJSON is longitude/latitude
  (EPSG:4326); a legacy ``crs`` member is honoured only when it names an EPSG code (or CRS84).
- SQLite's header with a GeoPackage application id is a GeoPackage. Python's sqlite3 first checks,
  in memory, that its schema holds no SQL that reading would run (views, virtual tables other
  than spatial indexes, generated columns); then GDAL's GPKG driver alone (the ``GPKG:`` prefix)
  reads the one layer, at most the limit's count of features, from a private temporary folder.
- anything else, zips included, is refused with a message saying what was expected.

Messages name the problem, never a library's error text, which can quote another file.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from contextlib import closing, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

UNREADABLE = "cannot read the file as GeoJSON or GeoPackage"
BOM = b"\xef\xbb\xbf"
SQLITE_HEADER = b"SQLite format 3\x00"
#: GeoPackage application ids (big-endian at byte 68): "GPKG" since version 1.2, "GP10"/"GP11" before.
GPKG_IDS = (b"GPKG", b"GP10", b"GP11")
#: Compressed files recognised only to say so.
ARCHIVES = {b"PK\x03\x04": "a zip archive", b"PK\x05\x06": "a zip archive", b"\x1f\x8b": "gzip-compressed"}
#: The only virtual table a GeoPackage may hold: a spatial index, exactly as the standard writes it.
_IDENTIFIER = r'(?:"(?:[^"]|"")+"|`(?:[^`]|``)+`|\[[^\]]+\]|\w+)'
_RTREE = re.compile(
    rf"CREATE VIRTUAL TABLE\s+{_IDENTIFIER}\s+USING\s+rtree\s*\(\s*"
    r"id\s*,\s*minx\s*,\s*maxx\s*,\s*miny\s*,\s*maxy\s*\)\s*",
    re.IGNORECASE,
)
_EPSG_NAME = re.compile(
    r"(?:urn:ogc:def:crs:EPSG:[0-9.]*:|EPSG:|https?://www\.opengis\.net/def/crs/EPSG/0/)([0-9]{1,9})", re.IGNORECASE
)
_CRS84_NAME = re.compile(
    r"(?:urn:ogc:def:crs:OGC:1\.3:|OGC:|https?://www\.opengis\.net/def/crs/OGC/1\.3/)CRS84", re.IGNORECASE
)


class DistrictFileError(ValueError):
    """A boundary file cannot be used; the message says why."""


@dataclass(frozen=True)
class Boundaries:
    """A boundary file's features: each one's name value and geometry, and the file's CRS."""

    names: list[object]
    geometries: list[BaseGeometry | None]
    crs: CRS | None


def read_bounded(source: Path | BinaryIO, limit: int) -> bytes:
    """Return a file's bytes, reading at most ``limit`` + 1 of them: a larger file is refused unread."""
    try:
        with source.open("rb") if isinstance(source, Path) else nullcontext(source) as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise DistrictFileError(f"cannot open the file ({type(exc).__name__})") from None
    if len(data) > limit:
        size = f"{limit / 2**20:.0f} MB" if limit >= 2**20 else f"{limit} bytes"
        raise DistrictFileError(f"the file is larger than {size}")
    return data


def read_boundaries(data: bytes, name_field: str, layer: str | None, max_features: int) -> Boundaries:
    """Return the features of a GeoJSON or GeoPackage file, refusing one with over ``max_features``.

    Raises
    ------
    DistrictFileError
        If the bytes are neither format, the name field is missing, or there are too many features.

    """
    if file_kind(data) == "geojson":
        if layer:
            raise DistrictFileError("a GeoJSON file has a single layer: leave the layer empty")
        return _geojson(data, name_field, max_features)
    return _geopackage(data, name_field, layer, max_features)


def file_kind(data: bytes) -> str:
    """Return "geojson" or "geopackage" from a file's first bytes; refuse anything else, saying what it is."""
    if not data.strip():
        raise DistrictFileError("the file is empty")
    if data.startswith(SQLITE_HEADER) and len(data) >= 100:
        if data[68:72] in GPKG_IDS:
            return "geopackage"
        raise DistrictFileError(f"{UNREADABLE}: it is an SQLite database, but its application id is not GeoPackage's")
    if data.removeprefix(BOM).lstrip()[:1] in (b"{", b"["):  # JSON; whether GeoJSON is checked next
        return "geojson"
    for magic, what in ARCHIVES.items():
        if data.startswith(magic):
            raise DistrictFileError(f"{UNREADABLE}: it is {what}; upload the GeoJSON or GeoPackage itself")
    raise DistrictFileError(f"{UNREADABLE}: only those two formats are accepted (no VRT, CSV, shapefile or other)")


def _too_many(max_features: int) -> DistrictFileError:
    return DistrictFileError(f"the file holds more than {max_features} districts")


def _no_field(name_field: str, fields: list[str]) -> DistrictFileError:
    return DistrictFileError(f"no field {name_field!r} for the district names (fields: {', '.join(fields)})")


def _geojson(data: bytes, name_field: str, max_features: int) -> Boundaries:
    """Read GeoJSON as JSON; the count is checked before any geometry is built."""
    try:
        document = orjson.loads(data.removeprefix(BOM))
    except orjson.JSONDecodeError as exc:
        raise DistrictFileError(f"{UNREADABLE}: it is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    features = _features(document, max_features)
    rows = [_properties(feature, row) for row, feature in enumerate(features, start=1)]
    fields = list(dict.fromkeys(key for properties in rows for key in properties))
    if name_field not in fields:
        raise _no_field(name_field, fields)
    geometries = [_shape(feature.get("geometry"), row) for row, feature in enumerate(features, start=1)]
    return Boundaries([properties.get(name_field) for properties in rows], geometries, _geojson_crs(document))


def _features(document: Any, max_features: int) -> list[Any]:
    """Return the features of a FeatureCollection (or a lone Feature), refusing too many."""
    kind = document.get("type") if isinstance(document, dict) else None
    features = [document] if kind == "Feature" else document.get("features") if kind == "FeatureCollection" else None
    if not isinstance(features, list):
        raise DistrictFileError(f"{UNREADABLE}: the JSON is not a GeoJSON FeatureCollection or Feature")
    if not features:
        raise DistrictFileError("the file holds no districts")
    if len(features) > max_features:
        raise _too_many(max_features)
    return features


def _properties(feature: Any, row: int) -> dict[str, Any]:
    """Return a feature's properties, its "id" among them as GDAL read it (a name may be kept there)."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise DistrictFileError(f"feature {row}: not a GeoJSON Feature")
    properties = feature.get("properties") or {}
    if not isinstance(properties, dict):
        raise DistrictFileError(f"feature {row}: its properties are not a JSON object")
    if "id" in feature and "id" not in properties:
        return {"id": feature["id"], **properties}
    return properties


def _shape(geometry: Any, row: int) -> BaseGeometry | None:
    if geometry is None:
        return None
    try:
        return shape(geometry)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, shapely.errors.ShapelyError):
        raise DistrictFileError(f"feature {row}: the geometry is not valid GeoJSON") from None


def _geojson_crs(document: dict[str, Any]) -> CRS:
    """Return EPSG:4326 (RFC 7946), or the EPSG code a legacy ``crs`` member names; refuse any other."""
    member = document.get("crs")
    if member is None:
        return CRS.from_epsg(4326)
    properties = member.get("properties") if isinstance(member, dict) and member.get("type") == "name" else None
    name = properties.get("name") if isinstance(properties, dict) else None
    if isinstance(name, str) and _CRS84_NAME.fullmatch(name):
        return CRS.from_epsg(4326)  # the same axes as CRS84 here: geopandas reads x as longitude
    code = _EPSG_NAME.fullmatch(name) if isinstance(name, str) else None
    if code is None:
        raise DistrictFileError("the file's crs member names no EPSG code (GeoJSON needs none: it is EPSG:4326)")
    try:
        return CRS.from_epsg(int(code[1]))
    except CRSError:
        raise DistrictFileError("the file's crs member names an EPSG code that does not exist") from None


def _geopackage(data: bytes, name_field: str, layer: str | None, max_features: int) -> Boundaries:
    """Check a GeoPackage's schema, then read one layer with GDAL's GPKG driver only."""
    data = _rollback_journal(data)
    table, fields = _inspect(data, layer)
    if name_field not in fields:
        raise _no_field(name_field, fields)
    with tempfile.TemporaryDirectory(prefix="mapsvc-districts-") as folder:  # mode 0700, removed after
        path = Path(folder) / "districts.gpkg"
        path.write_bytes(data)
        try:
            frame = pyogrio.read_dataframe(
                f"GPKG:{path}", layer=table, columns=[name_field], max_features=max_features + 1
            )
        except Exception as exc:  # GDAL's errors vary, and their text may quote the file
            raise DistrictFileError(f"{UNREADABLE}: GDAL cannot read the GeoPackage ({type(exc).__name__})") from None
    if len(frame) > max_features:
        raise _too_many(max_features)
    return Boundaries(frame[name_field].tolist(), list(frame.geometry), frame.crs)


def _rollback_journal(data: bytes) -> bytes:
    """Mark a write-ahead-log database (QGIS leaves GeoPackages so) as the single file it now is."""
    if data[18:20] == b"\x02\x02":
        return data[:18] + b"\x01\x01" + data[20:]
    return data


def _inspect(data: bytes, layer: str | None) -> tuple[str, list[str]]:
    """Return the feature table to read and its fields, read in memory by Python's sqlite3."""
    try:
        with closing(sqlite3.connect(":memory:")) as connection:
            connection.deserialize(data)
            connection.execute("PRAGMA query_only = ON")
            _refuse_executable_schema(connection)
            tables = dict(
                connection.execute(
                    "SELECT c.table_name, g.column_name FROM gpkg_contents c"
                    " JOIN gpkg_geometry_columns g ON g.table_name = c.table_name"
                    " WHERE lower(c.data_type) = 'features' ORDER BY c.table_name"
                ).fetchall()
            )
            table = _choose(tables, layer)
            columns = connection.execute("SELECT name, pk FROM pragma_table_info(?)", (table,)).fetchall()
    except sqlite3.DatabaseError as exc:
        raise DistrictFileError(
            f"{UNREADABLE}: the GeoPackage is damaged or incomplete ({type(exc).__name__})"
        ) from None
    return table, [name for name, pk in columns if not pk and name != tables[table]]


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
            if text is None or not _RTREE.fullmatch(text[0] or ""):
                raise DistrictFileError(
                    f"{UNREADABLE}: the GeoPackage holds a virtual table other than a spatial index"
                )
        else:
            hidden = connection.execute("SELECT hidden FROM pragma_table_xinfo(?)", (name,)).fetchall()
            if any(flag in (2, 3) for (flag,) in hidden):
                raise DistrictFileError(f"{UNREADABLE}: the GeoPackage holds generated columns (SQL run on reading)")


def _choose(tables: dict[str, str], layer: str | None) -> str:
    """Return the layer asked for, or the only one."""
    if layer is not None:
        if layer not in tables:
            raise DistrictFileError(f"no layer {layer!r} in the GeoPackage (layers: {', '.join(tables)})")
        return layer
    if not tables:
        raise DistrictFileError("the GeoPackage holds no layer of features")
    if len(tables) > 1:
        raise DistrictFileError(f"the GeoPackage holds several layers ({', '.join(tables)}): name the one to read")
    return next(iter(tables))
