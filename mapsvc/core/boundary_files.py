"""Boundary files' formats, told by their bytes and never by what GDAL guesses; GeoJSON read from them.

GDAL opens anything it has a driver for: a VRT file (XML) reads any local file or SQLite database
and may fetch from other hosts through ``/vsicurl/``, a ``CSV:`` path shows a file's first line
as field names, a zip is opened through ``/vsizip/``; and even its GeoPackage driver hands the
CRS definition a file stores to PROJ, which opens any grid file or URL that text names. So a
boundary file's first bytes decide, and GDAL reads none of them:

- JSON (text starting with ``{`` or ``[``) must be GeoJSON: its brackets and commas are counted
  first (parsed JSON takes some ten times the text's size), and the text of its strings (a
  string with one character outside the Basic Multilingual Plane takes four bytes a character),
  then it is parsed as JSON, a
  FeatureCollection or Feature, its shapes built by shapely. RFC 7946 GeoJSON is
  longitude/latitude (EPSG:4326); a legacy ``crs`` member is honoured only when it names an EPSG
  code (or CRS84) of a 2D geographic or projected CRS.
- SQLite's header with a GeoPackage application id is a GeoPackage, read by Python's sqlite3
  (:mod:`mapsvc.services.boundaries`) and shapely (:mod:`mapsvc.core.boundary_geopackage`).
- anything else, zips included, is refused with a message saying what was expected.

Messages name the problem, never a library's error text, which can quote another file.

Pure functions over the file's bytes: reading them, from a path or an upload, bounded by a size,
is :mod:`mapsvc.services.boundaries`' work.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import shapely
from pyproj import CRS
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from mapsvc.core.boundary_rules import (
    UNREADABLE,
    Boundaries,
    DistrictFileError,
    no_field,
    plane_crs,
    readable_size,
    too_detailed,
    too_many,
)

BOM = b"\xef\xbb\xbf"
SQLITE_HEADER = b"SQLite format 3\x00"
#: GeoPackage application ids (big-endian at byte 68): "GPKG" since version 1.2, "GP10"/"GP11" before.
GPKG_IDS = (b"GPKG", b"GP10", b"GP11")
#: Compressed files recognised only to say so.
ARCHIVES = {b"PK\x03\x04": "a zip archive", b"PK\x05\x06": "a zip archive", b"\x1f\x8b": "gzip-compressed"}
#: JSON brackets allowed for each feature beyond its points, rings and polygons (Feature, properties, geometry).
FEATURE_BRACKETS = 10
#: JSON commas allowed for each feature beyond its points' (members and properties).
FEATURE_COMMAS = 100
_EPSG_NAME = re.compile(
    r"(?:urn:ogc:def:crs:EPSG:[0-9.]*:|EPSG:|https?://www\.opengis\.net/def/crs/EPSG/0/)([0-9]{1,9})", re.IGNORECASE
)
#: A JSON string literal, quotes and escapes included (possessive: no backtracking).
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_CRS84_NAME = re.compile(
    r"(?:urn:ogc:def:crs:OGC:1\.3:|OGC:|https?://www\.opengis\.net/def/crs/OGC/1\.3/)CRS84", re.IGNORECASE
)


def read_geojson(
    data: bytes, name_field: str, layer: str | None, max_features: int, max_points: int, max_text: int
) -> Boundaries:
    """Return the features of a GeoJSON file (one :func:`file_kind` calls "geojson"), refusing too many.

    Parameters
    ----------
    data : bytes
        The file.
    name_field : str
        The field holding each feature's name.
    layer : str or None
        Must be empty: a GeoJSON file has one layer.
    max_features : int
        Most features read; a file with more is refused, before any geometry is built.
    max_points : int
        Most points, rings and polygons, all features together, counted in the text before it is parsed.
    max_text : int
        Most bytes of the strings (names, keys and values, quotes included), counted before it is parsed.

    Raises
    ------
    DistrictFileError
        If a layer is named, the text is not a GeoJSON FeatureCollection or Feature, the name
        field is missing, or there are too many features, points or bytes of text.

    """
    if layer:
        raise DistrictFileError("a GeoJSON file has a single layer: leave the layer empty")
    _refuse_too_detailed(data, max_features, max_points)
    _refuse_too_much_text(data, max_text)
    return _geojson(data, name_field, max_features)


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
        raise no_field(name_field, fields)
    geometries = [_shape(feature.get("geometry"), row) for row, feature in enumerate(features, start=1)]
    return Boundaries([properties.get(name_field) for properties in rows], geometries, _geojson_crs(document))


def _refuse_too_detailed(data: bytes, max_features: int, max_points: int) -> None:
    """Refuse JSON text with more brackets or commas than ``max_points`` points could have, before parsing it.

    Parsing builds a Python object for every value: a point ``[74.5,42.8]`` becomes a list and two
    floats, some 190 bytes for 20 of text, and a text of empty lists ``[],[],`` takes 30 times its
    size. Every point, ring and polygon opens one bracket; a 2D point has two commas, a 3D one
    three. Counting bytes is fast and needs no memory; brackets or commas inside strings count
    too, which only errs on the safe side.
    """
    brackets = data.count(b"[") + data.count(b"{")
    commas = data.count(b",")
    if (
        brackets > max_points + FEATURE_BRACKETS * max_features
        or commas > 2 * max_points + FEATURE_COMMAS * max_features
    ):
        raise too_detailed(max_points)


def _refuse_too_much_text(data: bytes, max_text: int) -> None:
    """Refuse JSON text whose strings hold more than ``max_text`` bytes, before parsing it.

    A parsed string takes one, two or four bytes a character, the widest of its characters: a
    string of ASCII letters with one emoji takes four times its text, and the parser's copy of
    the text one more. A bound on each string would not do (500 strings of 64 KB take as much as
    one of 32 MB), so their bytes are added up. The brackets and commas are counted first, which
    bounds the strings there can be to a few million; a string is matched whole, so an escaped
    quote does not end it.
    """
    if len(data) <= max_text:
        return
    if sum(found.end() - found.start() for found in _STRING.finditer(data)) > max_text:
        raise DistrictFileError(
            f"the file holds more than {readable_size(max_text)} of text in its names, fields and values"
            " (drop fields that are not needed, such as long descriptions)"
        )


def _features(document: Any, max_features: int) -> list[Any]:
    """Return the features of a FeatureCollection (or a lone Feature), refusing too many."""
    kind = document.get("type") if isinstance(document, dict) else None
    features = [document] if kind == "Feature" else document.get("features") if kind == "FeatureCollection" else None
    if not isinstance(features, list):
        raise DistrictFileError(f"{UNREADABLE}: the JSON is not a GeoJSON FeatureCollection or Feature")
    if not features:
        raise DistrictFileError("the file holds no districts")
    if len(features) > max_features:
        raise too_many(max_features)
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
    return plane_crs(int(code[1]), "the file's crs member")
