"""District files read: from a path or an upload's stream, bounded, told by their bytes, into districts.

``mapsvc districts import`` and the advocates' data page both read a file with
:func:`read_districts`. The reading is here, the judging in the core, which does no I/O:

- :func:`read_bounded` takes at most the size limit and one byte more from the path or the
  stream, so a larger file is refused unread;
- :func:`mapsvc.core.boundary_files.file_kind` tells GeoJSON from GeoPackage by the bytes (never
  by the name, nor by what GDAL guesses), and refuses anything else;
- a GeoJSON is read by :func:`mapsvc.core.boundary_files.read_geojson`; a GeoPackage's tables by
  :func:`read_geopackage` here, with Python's sqlite3 over the bytes in memory, its geometries and
  CRS then judged by :mod:`mapsvc.core.boundary_geopackage`;
- :func:`mapsvc.core.districts.districts_of` checks the names and shapes and reprojects them.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing, nullcontext
from pathlib import Path
from typing import BinaryIO

from pyproj import CRS

from mapsvc.core import districts as rules
from mapsvc.core.boundary_files import file_kind, read_geojson
from mapsvc.core.boundary_geopackage import geometries, is_spatial_index, layer_crs
from mapsvc.core.boundary_rules import UNREADABLE, Boundaries, DistrictFileError, no_field, readable_size, too_many
from mapsvc.core.districts import District


def read_districts(source: Path | BinaryIO, name_field: str = "name", layer: str | None = None) -> list[District]:
    """Read districts from a GeoJSON or GeoPackage file, reprojected to EPSG:4326.

    The limits are those of :mod:`mapsvc.core.districts`, looked up on each call.

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
        If the file cannot be opened or is larger than ``MAX_FILE_BYTES``, neither GeoJSON nor
        GeoPackage, lacks the name field, has no CRS, holds non-polygons, empty or duplicate
        names, more than ``MAX_DISTRICTS`` districts, ``MAX_POINTS`` points or, in GeoJSON,
        ``MAX_TEXT_BYTES`` bytes of strings (found before the rest is read), a coordinate that
        is not a finite number, before or after reprojection, or a point off the globe
        (longitude beyond ±180°, latitude beyond ±90°).

    """
    data = read_bounded(source, rules.MAX_FILE_BYTES)
    found = read_boundaries(data, name_field, layer, rules.MAX_DISTRICTS, rules.MAX_POINTS, rules.MAX_TEXT_BYTES)
    return rules.districts_of(found, name_field)


def read_bounded(source: Path | BinaryIO, limit: int) -> bytes:
    """Return a file's bytes, reading at most ``limit`` + 1 of them: a larger file is refused unread."""
    try:
        with source.open("rb") if isinstance(source, Path) else nullcontext(source) as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise DistrictFileError(f"cannot open the file ({type(exc).__name__})") from None
    if len(data) > limit:
        raise DistrictFileError(f"the file is larger than {readable_size(limit)}")
    return data


def read_boundaries(
    data: bytes, name_field: str, layer: str | None, max_features: int, max_points: int, max_text: int
) -> Boundaries:
    """Return the features of a GeoJSON or GeoPackage file, refusing one with over ``max_features``.

    Parameters
    ----------
    data : bytes
        The file.
    name_field : str
        The field holding each feature's name.
    layer : str or None
        A GeoPackage's layer to read (None: the only one).
    max_features : int
        Most features read; a file with more is refused, past features never read.
    max_points : int
        Most points, rings and polygons, all features together; a GeoJSON's text is counted
        against it before it is parsed, a GeoPackage's geometries before they are built.
    max_text : int
        Most bytes of a GeoJSON's strings (names, keys and values, quotes included), counted
        before it is parsed.

    Raises
    ------
    DistrictFileError
        If the bytes are neither format, the name field is missing, or there are too many
        features, points or bytes of text.

    """
    if file_kind(data) == "geojson":
        return read_geojson(data, name_field, layer, max_features, max_points, max_text)
    boundaries = read_geopackage(data, name_field, layer, max_features + 1, max_points)
    if len(boundaries.names) > max_features:
        raise too_many(max_features)
    return boundaries


def read_geopackage(data: bytes, name_field: str, layer: str | None, limit: int, max_points: int) -> Boundaries:
    """Return the names, polygons and CRS of a GeoPackage layer's first ``limit`` features (in row order).

    sqlite3 opens the bytes in memory, never to be written (``query_only``), after checking that
    the schema holds no SQL that reading would run (views, virtual tables other than spatial
    indexes, generated columns); the layer is a feature table of ``gpkg_contents``, its geometry
    column that of ``gpkg_geometry_columns``; every identifier comes from the schema and is quoted.
    No file is opened or written.

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
    return Boundaries([name for name, _ in rows], geometries([blob for _, blob in rows], max_points), crs)


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
            if text is None or not is_spatial_index(text[0]):
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
    """Return the CRS of the layer's EPSG code (None if the layer names no row), never reading the definition."""
    query = "SELECT organization, organization_coordsys_id FROM gpkg_spatial_ref_sys WHERE srs_id = ?"
    row = connection.execute(query, (srs_id,)).fetchone()
    if row is None:
        return None
    organization, code = row
    return layer_crs(organization, code)
