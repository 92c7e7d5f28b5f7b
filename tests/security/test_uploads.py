"""District uploads: a boundary file is read by what its bytes are, never by what GDAL guesses.

Security issue #12, findings 1 and 6. GDAL opened an upload with every driver on: a VRT file read
the accounts table of any SQLite database into district names, a ``CSV:`` source showed another
file's first line in the "no field" message, ``/vsicurl/`` fetched from other hosts, a zip was
opened, and the district count was checked only after the whole file was read. Each attack is
tried on the reader (``mapsvc.services.boundaries``), through the advocates' upload page and
through the command line.

The follow-up review found three more: GDAL's GeoPackage driver still handed the file's stored CRS
definition to PROJ, which opened the grid file or fetched the URL a ``PARAMETERFILE`` named;
parsing a GeoJSON took up to 30 times its size in memory before anything was counted; and a
``crs`` member naming a vertical CRS swapped the axes without a word.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import geopandas as gpd
import numpy as np
import orjson
import pyogrio
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

import mapsvc.core.boundary_files as bound
import mapsvc.core.districts as districts_module
from mapsvc.core.districts import (
    MAX_DISTRICTS,
    MAX_FILE_BYTES,
    MAX_POINTS,
    MAX_TEXT_BYTES,
    DistrictFileError,
)
from mapsvc.core.roles import Role
from mapsvc.services.boundaries import read_districts
from mapsvc.store.advocacy import load_districts
from tests.helpers import sign_in
from tests.test_advocacy_cli import districts_frame
from tests.test_advocacy_data import districts, geojson, text, upload

PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2VjcmV0c2FsdA$SECRETHASHSECRETHASH"
TOTP_SECRET = "JBSWY3DPEHPK3PXPSECRETTOTP"
FIRST_LINE = "SECRETFIRSTLINE,another_secret_cell"
POLYGON = "POLYGON((74.5 42.8,74.6 42.8,74.6 42.9,74.5 42.8))"


@pytest.fixture
def advocate(client, app):
    """A signed-in advocate's client and its CSRF token."""
    return client, sign_in(client, app, Role.ADVOCATE)


@pytest.fixture
def accounts_db(tmp_path: Path) -> Path:
    """An SQLite database with an accounts table like the service's, holding a secret row."""
    path = tmp_path / "mapsvc.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE accounts (username TEXT, password_hash TEXT, totp_secret TEXT)")
        connection.execute("INSERT INTO accounts VALUES ('admin', ?, ?)", (PASSWORD_HASH, TOTP_SECRET))
    connection.close()
    return path


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A local file whose first line must never be shown."""
    path = tmp_path / "secret.csv"
    path.write_text(f"{FIRST_LINE}\nrow,two\n")
    return path


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A local HTTP server standing for another host: its port, and the paths it was asked for."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(404)
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], asked
    server.shutdown()
    server.server_close()
    thread.join()


def vrt_reading_accounts(database: Path) -> bytes:
    """A GDAL VRT file turning every account's secrets into a district name."""
    return f"""<OGRVRTDataSource><OGRVRTLayer name="districts">
  <SrcDataSource>{database}</SrcDataSource>
  <SrcSQL>SELECT username || ':' || password_hash || ':' || totp_secret AS name, '{POLYGON}' AS wkt
    FROM accounts</SrcSQL>
  <GeometryField encoding="WKT" field="wkt"/><LayerSRS>EPSG:4326</LayerSRS>
</OGRVRTLayer></OGRVRTDataSource>""".encode()


def vrt_csv(source: str, layer: str) -> bytes:
    """A GDAL VRT file over a CSV source: its first line becomes the field names."""
    return f"""<OGRVRTDataSource><OGRVRTLayer name="districts">
  <SrcDataSource>{source}</SrcDataSource><SrcLayer>{layer}</SrcLayer>
  <LayerSRS>EPSG:4326</LayerSRS><GeometryType>wkbPolygon</GeometryType>
</OGRVRTLayer></OGRVRTDataSource>""".encode()


def zipped(data: bytes, name: str = "rayons.geojson") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def square(i: int) -> dict[str, object]:
    return {"type": "Polygon", "coordinates": [[[i, 0], [i + 1, 0], [i + 1, 1], [i, 1], [i, 0]]]}


def collection(features: list[dict[str, object]], **members: object) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features, **members}).encode()


def feature(name: str, geometry: object) -> dict[str, object]:
    return {"type": "Feature", "properties": {"name": name}, "geometry": geometry}


def refusal(data: bytes, **kwargs: str) -> str:
    """Return the message with which the reader refuses ``data``."""
    with pytest.raises(DistrictFileError) as refused:
        read_districts(io.BytesIO(data), **kwargs)
    return str(refused.value)


def assert_no_secret(*texts: str) -> None:
    for secret in (PASSWORD_HASH, "SECRETHASH", TOTP_SECRET, "SECRETFIRSTLINE", "another_secret_cell"):
        assert not any(secret in t for t in texts), f"{secret} leaked"


# The reader.


def test_a_vrt_reading_a_database_is_refused_and_reads_nothing(accounts_db):
    message = refusal(vrt_reading_accounts(accounts_db))

    assert "only those two formats are accepted" in message
    assert_no_secret(message)


@pytest.mark.parametrize("name_field", ["name", "SECRETFIRSTLINE"])
def test_a_vrt_over_a_csv_source_shows_no_line_of_it(secret_file, name_field):
    message = refusal(vrt_csv(f"CSV:{secret_file}", "secret"), name_field=name_field)

    assert "only those two formats are accepted" in message
    assert_no_secret(message)


def test_a_bare_gdal_connection_string_is_refused(secret_file):
    message = refusal(f"CSV:{secret_file}".encode())

    assert "only those two formats are accepted" in message
    assert str(secret_file) not in message


def test_a_vrt_fetching_from_another_host_sends_no_request(listener):
    port, asked = listener
    message = refusal(vrt_csv(f"/vsicurl/http://127.0.0.1:{port}/internal.csv", "internal"))

    assert "only those two formats are accepted" in message
    assert asked == []


def test_a_plain_sqlite_database_is_not_taken_for_a_geopackage(accounts_db):
    message = refusal(accounts_db.read_bytes(), name_field="username")

    assert "SQLite database, but its application id is not GeoPackage's" in message
    assert_no_secret(message)


@pytest.mark.parametrize(
    ("data", "what"),
    [(zipped(geojson("name")), "a zip archive"), (b"\x1f\x8b\x08\x00" + b"\x00" * 20, "gzip-compressed")],
    ids=["zip", "gzip"],
)
def test_compressed_files_are_refused_by_their_content(data, what):
    assert (
        refusal(data)
        == f"cannot read the file as GeoJSON or GeoPackage: it is {what}; upload the GeoJSON or GeoPackage itself"
    )


class CountingStream(io.BytesIO):
    """A stream that remembers how many bytes were read from it."""

    taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data


def test_a_file_over_the_size_limit_is_refused_unread(monkeypatch):
    monkeypatch.setattr(districts_module, "MAX_FILE_BYTES", 1000)
    data = collection([feature(f"d{i}", square(i)) for i in range(40)])
    stream = CountingStream(data)
    assert len(data) > 4000

    with pytest.raises(DistrictFileError, match="the file is larger than 1000 bytes"):
        read_districts(stream)
    assert stream.taken <= 1001


def test_too_many_geojson_features_are_refused_before_any_geometry_is_read(monkeypatch):
    monkeypatch.setattr(districts_module, "MAX_DISTRICTS", 3)
    features = [feature(f"d{i}", square(i)) for i in range(4)]
    features.append(feature("past the limit", {"type": "Polygon", "coordinates": "never read"}))

    assert refusal(collection(features)) == "the file holds more than 3 districts"


def geopackage(tmp_path: Path, *statements: str) -> bytes:
    """Return the bytes of a valid districts GeoPackage changed by SQL statements."""
    path = tmp_path / "rayons.gpkg"
    districts_frame().rename(columns={"rayon": "name"}).to_file(path, driver="GPKG", layer="rayons")
    with sqlite3.connect(path) as connection:
        for statement in statements:
            connection.execute(statement)
    connection.close()
    return path.read_bytes()


REGISTER = (
    "INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) VALUES ('{0}', 'features', '{0}', 4326)",
    "INSERT INTO gpkg_geometry_columns VALUES ('{0}', 'geom', 'POLYGON', 4326, 0, 0)",
)


@pytest.mark.parametrize(
    ("statements", "message"),
    [
        (
            ("CREATE VIEW leak AS SELECT fid, geom, sqlite_version() AS name FROM rayons", *REGISTER),
            "the GeoPackage holds a view (SQL run on reading); only tables are read",
        ),
        (
            ("CREATE VIRTUAL TABLE leak USING fts5(name)",),
            "the GeoPackage holds a virtual table other than a spatial index",
        ),
        (
            ("CREATE TABLE leak (fid INTEGER PRIMARY KEY, geom BLOB, name TEXT AS ('district ' || fid))", *REGISTER),
            "the GeoPackage holds generated columns (SQL run on reading)",
        ),
    ],
    ids=["view", "virtual table", "generated column"],
)
def test_geopackages_holding_sql_that_reading_would_run_are_refused(tmp_path, statements, message):
    data = geopackage(tmp_path, *(s.format("leak") for s in statements))

    assert refusal(data, layer="rayons") == f"cannot read the file as GeoJSON or GeoPackage: {message}"


def test_a_layer_whose_name_is_not_text_is_no_layer(tmp_path):
    data = geopackage(
        tmp_path,
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id)"
        " VALUES (X'6C65616B', 'features', 'x', 4326)",  # the bytes of 'leak'
        "INSERT INTO gpkg_geometry_columns VALUES (X'6C65616B', 'geom', 'POLYGON', 4326, 0, 0)",
    )

    assert [d.name for d in read_districts(io.BytesIO(data))] == ["Lenin", "Pervomay"]
    assert refusal(data, layer="leak") == "no layer 'leak' in the GeoPackage (layers: rayons)"


def test_a_missing_layer_is_named_with_those_there(tmp_path):
    assert refusal(geopackage(tmp_path), layer="x") == "no layer 'x' in the GeoPackage (layers: rayons)"


# What must go on working.


def test_a_geopackage_left_in_write_ahead_log_mode_is_read(tmp_path):
    data = geopackage(tmp_path, "PRAGMA journal_mode = WAL")
    assert data[18:20] == b"\x02\x02"

    assert [d.name for d in read_districts(io.BytesIO(data))] == ["Lenin", "Pervomay"]


def test_a_geopackage_with_several_layers_needs_one_named(tmp_path):
    path = tmp_path / "two.gpkg"
    districts_frame().to_file(path, layer="old")
    districts_frame().to_file(path, layer="new")

    assert refusal(path.read_bytes(), name_field="rayon") == (
        "the GeoPackage holds several layers (new, old): name the one to read"
    )
    assert [d.name for d in read_districts(path, "rayon", "new")] == ["Lenin", "Pervomay"]


def test_a_legacy_crs_member_naming_an_epsg_code_is_honoured():
    utm = districts_frame(32643).rename(columns={"rayon": "name"})
    data = collection(
        json.loads(utm.to_json())["features"],
        crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32643"}},
    )

    lenin = read_districts(io.BytesIO(data))[0]

    assert lenin.geometry.bounds == pytest.approx((74.45, 42.80, 74.5698, 42.95), abs=1e-6)


def test_a_crs_member_naming_anything_else_is_refused(secret_file):
    crs = {"type": "name", "properties": {"name": f"+init={secret_file}:1"}}

    message = refusal(collection([feature("A", square(0))], crs=crs))

    assert message == "the file's crs member names no EPSG code (GeoJSON needs none: it is EPSG:4326)"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[]", "the JSON is not a GeoJSON FeatureCollection or Feature"),
        (b'{"type": "FeatureCollection", "features": [1]}', "feature 1: not a GeoJSON Feature"),
        (collection([feature("A", {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]})]), "feature 1: the geometry"),
        (b"{\n  not json", "it is not valid JSON (line 2, column 3)"),
    ],
    ids=["array", "not a feature", "bad geometry", "not json"],
)
def test_broken_geojson_is_named(data, message):
    assert message in refusal(data)


# GeoPackages without GDAL (issue #12 follow-up): PROJ reads no definition from the file.


GRID_CRS = (
    'BOUNDCRS[SOURCECRS[GEOGCRS["x",DATUM["x",ELLIPSOID["GRS 1980",6378137,298.257222101]],CS[ellipsoidal,2],'
    'AXIS["lon",east,ANGLEUNIT["degree",0.0174532925199433]],AXIS["lat",north,ANGLEUNIT["degree",0.0174532925199433]]]],'
    'TARGETCRS[GEOGCRS["WGS 84",DATUM["World Geodetic System 1984",ELLIPSOID["WGS 84",6378137,298.257223563]],'
    'CS[ellipsoidal,2],AXIS["lon",east,ANGLEUNIT["degree",0.0174532925199433]],'
    'AXIS["lat",north,ANGLEUNIT["degree",0.0174532925199433]]]],'
    'ABRIDGEDTRANSFORMATION["x",METHOD["NTv2",ID["EPSG",9615]],'
    'PARAMETERFILE["Latitude and longitude difference file","{0}"]]]'
)
ROOT = Path(__file__).resolve().parents[2]
READ_WITH_PROJ_NETWORK_ON = """
import io, json, sys
import pyproj.network
from mapsvc.core.districts import DistrictFileError
from mapsvc.services.boundaries import read_districts
try:
    found = [list(d.geometry.bounds) for d in read_districts(io.BytesIO(sys.stdin.buffer.read()))]
except DistrictFileError as exc:
    found = str(exc)
print(json.dumps({"found": found, "network": pyproj.network.is_network_enabled()}))
"""


def read_in_a_new_process(data: bytes, **environment: str) -> dict[str, object]:
    """Read a district file in a new Python process (PROJ reads its environment once) and return what came back."""
    done = subprocess.run(
        [sys.executable, "-c", READ_WITH_PROJ_NETWORK_ON],
        input=data,
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, **environment},
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("organization", "code", "found"),
    [
        ("NONE", 99999, "the layer's coordinate reference system has no EPSG code;"),
        ("EPSG", 4326, [74.45, 42.8, 74.5698, 42.95]),
    ],
    ids=["no EPSG code", "EPSG code"],
)
def test_a_geopackage_crs_naming_a_grid_url_sends_no_request_even_with_proj_network_on(
    tmp_path, listener, organization, code, found
):
    port, asked = listener
    definition = GRID_CRS.format(f"http://127.0.0.1:{port}/grid.tif")
    data = geopackage(
        tmp_path,
        f"UPDATE gpkg_spatial_ref_sys SET organization = '{organization}', organization_coordsys_id = {code},"
        f" definition = '{definition}' WHERE srs_id = 4326",
    )

    read = read_in_a_new_process(data, PROJ_NETWORK="ON")

    assert asked == []
    assert read["network"] is False
    if isinstance(found, str):
        assert str(read["found"]).startswith(found)
    else:
        assert read["found"][0] == pytest.approx(found, abs=1e-9)


def test_a_geopackage_is_read_without_gdal_and_without_writing_a_file(tmp_path, monkeypatch):
    data = geopackage(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    for name in ("read_dataframe", "read_arrow", "open_arrow", "read_info", "list_layers"):
        monkeypatch.setattr(pyogrio, name, lambda *args, **kwargs: pytest.fail("GDAL opened the GeoPackage"))

    assert [d.name for d in read_districts(io.BytesIO(data))] == ["Lenin", "Pervomay"]
    assert list(scratch.iterdir()) == []


def shapes() -> gpd.GeoDataFrame:
    """Districts as GIS software writes them: a square with a hole, and a district on two islands."""
    holed = Polygon(box(74.45, 42.80, 74.57, 42.95).exterior.coords, [box(74.5, 42.85, 74.52, 42.87).exterior.coords])
    islands = MultiPolygon([box(74.57, 42.80, 74.70, 42.95), box(74.71, 42.80, 74.72, 42.81)])
    return gpd.GeoDataFrame({"name": ["Lenin", "Pervomay"]}, geometry=[holed, islands], crs=4326)


@pytest.mark.parametrize("crs", [4326, 32643, 3857, 4258])
def test_a_geopackage_written_by_gdal_reads_as_gdal_reads_it(tmp_path, crs):
    path = tmp_path / "rayons.gpkg"
    shapes().to_crs(crs).to_file(path, driver="GPKG", layer="rayons")  # with its spatial index (rtree)
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM sqlite_master WHERE name = 'rtree_rayons_geom'").fetchone()
    connection.close()
    expected = gpd.read_file(path).to_crs(4326)

    found = read_districts(path)

    assert [d.name for d in found] == ["Lenin", "Pervomay"]
    for district, shape in zip(found, expected.geometry, strict=True):
        assert district.geometry.equals_exact(shape, tolerance=1e-9)


ENVELOPE_VALUES = (0, 4, 6, 6, 8)


def geometry_blob(
    geometry: BaseGeometry, envelope: int = 1, big_endian: bool = False, flags: int = 0, wkb: bytes | None = None
) -> bytes:
    """Return a GeoPackage geometry: the standard header, an envelope of the given kind, then ISO WKB."""
    order = ">" if big_endian else "<"
    minx, miny, maxx, maxy = geometry.bounds
    values = [minx, maxx, miny, maxy, 0.0, 0.0, 0.0, 0.0][: ENVELOPE_VALUES[envelope]] if envelope < 5 else []
    header = b"GP" + bytes([0, flags | envelope << 1 | int(not big_endian)]) + struct.pack(order + "i", 4326)
    wkb = shapely.to_wkb(geometry, byte_order=int(not big_endian), flavor="iso") if wkb is None else wkb
    return header + struct.pack(f"{order}{len(values)}d", *values) + wkb


def geopackage_of(tmp_path: Path, blobs: list[bytes | None]) -> bytes:
    """Return a GeoPackage of districts "d1", "d2"... whose geometry blobs are ``blobs``."""
    path = tmp_path / "blobs.gpkg"
    frame = gpd.GeoDataFrame(
        {"name": [f"d{i}" for i in range(1, len(blobs) + 1)]}, geometry=[box(0, 0, 1, 1)] * len(blobs)
    )
    frame.set_crs(4326).to_file(path, driver="GPKG", layer="rayons", SPATIAL_INDEX="NO")
    with sqlite3.connect(path) as connection:
        connection.executemany("UPDATE rayons SET geom = ? WHERE fid = ?", [(b, i) for i, b in enumerate(blobs, 1)])
    connection.close()
    return path.read_bytes()


@pytest.mark.parametrize("big_endian", [False, True], ids=["little-endian", "big-endian"])
@pytest.mark.parametrize("envelope", [0, 1, 2, 3, 4])
def test_every_standard_geometry_header_is_read(tmp_path, envelope, big_endian):
    shape = shapes().geometry[1]

    found = read_districts(io.BytesIO(geopackage_of(tmp_path, [geometry_blob(shape, envelope, big_endian)])))

    assert found[0].geometry.equals_exact(shape, tolerance=1e-12)


NESTED = struct.pack("<BII", 1, 6, 1) + struct.pack("<BII", 1, 7, 1) * 50_000 + struct.pack("<BII", 1, 7, 0)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (geometry_blob(box(0, 0, 1, 1), flags=0b10_0000), "the geometry is an extended GeoPackage geometry"),
        (b"XP" + geometry_blob(box(0, 0, 1, 1))[2:], "the geometry is not a GeoPackage geometry"),
        (b"GP\x01" + geometry_blob(box(0, 0, 1, 1))[3:], "the geometry is not a GeoPackage geometry"),
        (geometry_blob(box(0, 0, 1, 1), envelope=5), "the geometry's header is damaged"),
        (geometry_blob(box(0, 0, 1, 1))[:-8], "the geometry is damaged"),
        (
            geometry_blob(
                box(0, 0, 1, 1),
                wkb=shapely.to_wkb(shapely.set_srid(box(0, 0, 1, 1), 4326), flavor="extended", include_srid=True),
            ),
            "the geometry is damaged",
        ),
        (geometry_blob(box(0, 0, 1, 1).exterior), "the geometry is not a polygon"),
        (geometry_blob(box(0, 0, 1, 1), wkb=NESTED), "the geometry is not a polygon"),  # GEOS would crash on it
    ],
    ids=["extended", "magic", "version", "envelope", "truncated", "ewkb", "line", "nested collections"],
)
def test_a_geometry_that_is_no_standard_polygon_is_refused_before_geos_reads_it(tmp_path, blob, message):
    data = geopackage_of(tmp_path, [geometry_blob(box(0, 0, 1, 1)), blob])

    assert refusal(data).startswith(f"feature 2: {message}")


def test_no_geopackage_feature_past_the_limit_is_decoded(monkeypatch, tmp_path):
    monkeypatch.setattr(districts_module, "MAX_DISTRICTS", 3)
    blobs = [geometry_blob(box(i, 0, i + 1, 1)) for i in range(4)] + [b"never decoded"] * 46

    assert refusal(geopackage_of(tmp_path, blobs)) == "the file holds more than 3 districts"


def test_a_geopackage_past_the_points_budget_is_refused_before_any_shape_is_built(monkeypatch, tmp_path):
    monkeypatch.setattr(districts_module, "MAX_POINTS", 13)  # a square is 7: itself, its ring, 5 points
    monkeypatch.setattr(shapely, "from_wkb", lambda *args, **kwargs: pytest.fail("a shape was built"))
    empty_rings = geometry_blob(box(0, 0, 1, 1), wkb=struct.pack("<BII", 1, 3, 10**6) + b"\0\0\0\0" * 10**6)

    assert refusal(geopackage_of(tmp_path, [geometry_blob(box(0, 0, 1, 1))] * 2)).startswith(
        "the file is too detailed: it holds more than 13 points"
    )
    assert refusal(geopackage_of(tmp_path, [empty_rings])).startswith("the file is too detailed")


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            "UPDATE gpkg_spatial_ref_sys SET organization = 'NONE' WHERE srs_id = 4326",
            "the layer's coordinate reference system has no EPSG code; save the layer in an EPSG one",
        ),
        (
            "UPDATE gpkg_spatial_ref_sys SET organization_coordsys_id = 5773 WHERE srs_id = 4326",
            "the layer's coordinate reference system names EPSG:5773, which is not a 2D geographic or projected",
        ),
        (
            "UPDATE gpkg_spatial_ref_sys SET organization_coordsys_id = 7030 WHERE srs_id = 4326",
            "the layer's coordinate reference system names an EPSG code that does not exist",
        ),
    ],
    ids=["not EPSG", "vertical", "no such code"],
)
def test_a_geopackage_crs_other_than_a_2d_epsg_one_is_refused(tmp_path, statement, message):
    assert refusal(geopackage(tmp_path, statement)).startswith(message)


# GeoJSON's parse, bounded before it starts (issue #12 follow-up).


def hostile(values: bytes) -> bytes:
    """Return a 20 MB upload whose one feature carries ``values`` (e.g. b"[]") over and over in a member."""
    start = b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"a"},"geometry":null,"x":['
    return start + (values + b",") * ((20 * 2**20 - len(start)) // (len(values) + 1)) + values + b"]}]}"


@pytest.mark.parametrize("values", [b"[]", b"{}", b"0.1"], ids=["lists", "objects", "numbers"])
def test_a_geojson_of_millions_of_values_is_refused_before_it_is_parsed(monkeypatch, values):
    monkeypatch.setattr(orjson, "loads", lambda *args, **kwargs: pytest.fail("the text was parsed"))

    assert refusal(hostile(values)) == (
        "the file is too detailed: it holds more than 1000000 points"
        " (simplify the boundaries, e.g. with QGIS's Simplify, or drop fields that are not needed)"
    )


def test_a_budget_allows_the_brackets_and_commas_of_its_points_and_not_one_more(monkeypatch):
    monkeypatch.setattr(districts_module, "MAX_DISTRICTS", 1)
    monkeypatch.setattr(districts_module, "MAX_POINTS", 1010)
    ring = [[i / 1000, 0] for i in range(999)] + [[0, 1], [0, 0]]

    def padded(brackets: int, commas: int) -> bytes:  # padding in a string counts too
        properties = {"name": "A", "pad": "[" * brackets + "," * commas}
        polygon = {"type": "Polygon", "coordinates": [ring]}
        return collection([{"type": "Feature", "properties": properties, "geometry": polygon}])

    data = padded(0, 0)
    brackets = 1010 + bound.FEATURE_BRACKETS - data.count(b"[") - data.count(b"{")
    commas = 2 * 1010 + bound.FEATURE_COMMAS - data.count(b",")

    assert [d.name for d in read_districts(io.BytesIO(padded(brackets, commas)))] == ["A"]
    assert refusal(padded(brackets + 1, commas)).startswith("the file is too detailed: it holds more than 1010 points")
    assert refusal(padded(brackets, commas + 1)).startswith("the file is too detailed: it holds more than 1010 points")


EMOJI = "\U0001f600".encode()


def strings_of(total: int, each: int) -> bytes:
    """Return a GeoJSON whose feature carries ``total`` bytes of strings of ``each`` bytes, an emoji in each."""
    text = b'"' + b"a" * (each - 2 - len(EMOJI)) + EMOJI + b'"'
    start = b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"a"},"geometry":null,"x":['
    return start + b",".join([text] * (total // each)) + b"]}]}"


@pytest.mark.parametrize(
    "body",
    [
        strings_of(31 * 2**20, 31 * 2**20),
        strings_of(31 * 2**20, 64 * 1024),
        b'{"type":"Feature","properties":{"name":"a","' + b"k" * 9 * 2**20 + b'":1},"geometry":null}',
        b'{"type":"Feature","properties":{"name":"a","x":"\\"' + b"a" * 9 * 2**20 + b'\\""},"geometry":null}',
    ],
    ids=["one string", "strings of 64 KB", "a key", "escaped quotes"],
)
def test_a_geojson_of_too_much_text_is_refused_before_it_is_parsed(monkeypatch, body):
    monkeypatch.setattr(orjson, "loads", lambda *args, **kwargs: pytest.fail("the text was parsed"))

    assert refusal(body) == (
        "the file holds more than 8 MB of text in its names, fields and values"
        " (drop fields that are not needed, such as long descriptions)"
    )


def test_districts_with_long_descriptions_are_read():
    description = "Граница района по улицам " * 2000  # 90 KB of Cyrillic text
    features = [feature(f"d{i}", square(i)) for i in range(20)]
    for district in features:
        district["properties"]["description"] = description  # type: ignore[index]

    assert [d.name for d in read_districts(io.BytesIO(collection(features)))] == [f"d{i}" for i in range(20)]


def test_the_strings_budget_allows_its_bytes_and_not_one_more(monkeypatch):
    body = collection([feature("d1", square(0)), feature("d2", square(1))])
    monkeypatch.setattr(districts_module, "MAX_TEXT_BYTES", string_bytes(body))

    assert [d.name for d in read_districts(io.BytesIO(body))] == ["d1", "d2"]
    monkeypatch.setattr(districts_module, "MAX_TEXT_BYTES", string_bytes(body) - 1)
    assert refusal(body).startswith(f"the file holds more than {string_bytes(body) - 1} bytes of text")


#: Measures in a new process: its peak resident memory (VmHWM) is reset once the body is read, so
#: the peak is the reader's; ``ru_maxrss`` would not do, as Linux carries the parent's peak into a
#: child through ``exec``.
MEASURE = """
import io, sys
from mapsvc.core.districts import DistrictFileError
from mapsvc.services.boundaries import read_districts
def kilobytes(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
body = sys.stdin.buffer.read()
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")
held = kilobytes("VmRSS")
try:
    print(len(read_districts(io.BytesIO(body))), file=sys.stderr)
except DistrictFileError as exc:
    print(exc, file=sys.stderr)
print((kilobytes("VmHWM") - held) / 1024)
"""
#: Most memory reading a district file may take, in MB, past what the process held with the file's bytes.
PEAK_MB = 400


def peak_reading(body: bytes) -> tuple[float, str]:
    """Return the peak memory (MB) a new process takes to read ``body``, and what the reader said."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE], input=body, capture_output=True, cwd=ROOT, check=True, timeout=300
    )
    return float(done.stdout), done.stderr.decode().strip().splitlines()[-1]


def worst_accepted_geojson() -> bytes:
    """Return the GeoJSON that takes most memory to parse within every limit.

    Empty objects cost the most for their text (some 90 bytes for 3), one-letter strings next (56
    bytes for 4): as many as the brackets and the commas allow; then a string with one character
    outside the Basic Multilingual Plane, which Python holds at 4 bytes a character, as long as
    the strings' budget allows; the rest of the 32 MB is blanks.
    """
    start = b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"a"},"geometry":null,"x":['
    objects = MAX_POINTS + bound.FEATURE_BRACKETS * MAX_DISTRICTS - 5
    letters = 2 * MAX_POINTS + bound.FEATURE_COMMAS * MAX_DISTRICTS - 4 - objects
    body = start + b"{}," * objects + b'"a",' * letters
    emoji, end = "\U0001f600".encode(), b"]}]}"
    text = MAX_TEXT_BYTES - string_bytes(body) - len(emoji) - 2
    body += b'"' + b"a" * text + emoji + b'"'
    return body + b" " * (MAX_FILE_BYTES - len(body) - len(end)) + end


def string_bytes(body: bytes) -> int:
    """Return the bytes of the JSON strings in ``body``, quotes included (the reader's count)."""
    return sum(len(literal) for literal in bound._STRING.findall(body))


def detailed_city() -> bytes:
    """Return the most detailed districts file accepted: 2000 districts of 497 points each (6 decimals)."""
    angles = np.linspace(0, 2 * np.pi, 497)
    features = []
    for i in range(MAX_DISTRICTS):
        x, y = 74.4 + (i % 50) * 0.006, 42.8 + (i // 50) * 0.006
        ring = np.round(np.column_stack([x + 0.0025 * np.cos(angles), y + 0.0025 * np.sin(angles)]), 6)
        ring[-1] = ring[0]
        features.append(feature(f"district {i}", {"type": "Polygon", "coordinates": [ring.tolist()]}))
    return orjson.dumps({"type": "FeatureCollection", "features": features})


def test_the_most_detailed_city_is_read_within_the_memory_bound():
    body = detailed_city()
    assert len(body) <= MAX_FILE_BYTES

    peak, said = peak_reading(body)

    assert said == str(MAX_DISTRICTS)
    assert peak < PEAK_MB


def test_the_worst_geojson_within_the_limits_is_parsed_within_the_memory_bound():
    body = worst_accepted_geojson()
    assert len(body) == MAX_FILE_BYTES

    peak, said = peak_reading(body)

    assert said == "feature 1 (a): the geometry is not a polygon"  # parsed: no limit refused it
    assert string_bytes(body) == MAX_TEXT_BYTES
    assert peak < PEAK_MB


@pytest.mark.parametrize(
    ("code", "kind"),
    [(5773, "vertical"), (5714, "vertical"), (4978, "geocentric"), (4979, "3D geographic"), (9518, "compound")],
)
def test_a_crs_member_naming_other_than_a_2d_crs_is_refused(code, kind):
    crs = {"type": "name", "properties": {"name": f"EPSG:{code}"}}
    polygon = {"type": "Polygon", "coordinates": [[[74.5, 42.8], [74.6, 42.8], [74.6, 42.9], [74.5, 42.8]]]}

    message = refusal(collection([feature("A", polygon)], crs=crs))

    assert message == (
        f"the file's crs member names EPSG:{code}, which is not a 2D geographic or projected coordinate reference"
        " system (districts need longitude/latitude, as EPSG:4326, or a map projection, as a UTM zone)"
    )


# Through the advocates' upload page and the command line.


def attacks(accounts_db: Path, secret_file: Path, port: int) -> dict[str, bytes]:
    return {
        "vrt over the accounts": vrt_reading_accounts(accounts_db),
        "vrt over a csv file": vrt_csv(f"CSV:{secret_file}", "secret"),
        "vrt over another host": vrt_csv(f"/vsicurl/http://127.0.0.1:{port}/internal.csv", "internal"),
        "sqlite database": accounts_db.read_bytes(),
        "zip": zipped(geojson("name")),
    }


ATTACKS = ["vrt over the accounts", "vrt over a csv file", "vrt over another host", "sqlite database", "zip"]


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_upload_page_refuses_each_attack_and_keeps_the_districts(
    advocate, app, accounts_db, secret_file, listener, attack
):
    client, token = advocate
    upload(client, token, "/advocacy/data/districts", geojson(), "good.geojson", name_field="rayon")
    port, asked = listener
    data = attacks(accounts_db, secret_file, port)[attack]

    response = upload(client, token, "/advocacy/data/districts", data, "rayons.geojson", name_field="name")

    assert response.status_code == 422
    assert "cannot read the file as GeoJSON or GeoPackage" in text(response)
    assert_no_secret(text(response))
    assert districts(app) == ["Lenin", "Pervomay"]
    assert asked == []


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_command_line_refuses_each_attack(runner, app, tmp_path, accounts_db, secret_file, listener, attack):
    port, asked = listener
    path = tmp_path / "rayons.geojson"
    path.write_bytes(attacks(accounts_db, secret_file, port)[attack])

    result = runner.invoke(args=["districts", "import", str(path)])

    assert result.exit_code != 0
    assert "cannot read the file as GeoJSON or GeoPackage" in result.output
    assert_no_secret(result.output)
    with app.extensions["mapsvc.store"].reader() as session:
        assert load_districts(session) == []
    assert asked == []


# Coordinates no district can have (issue #12, second review): GEOS raised on NaN and infinities,
# a 500 on the page and a traceback from the command line, and 1e308 degrees was a district.


NAN, INF = float("nan"), float("inf")
UTM = {"type": "name", "properties": {"name": "EPSG:32643"}}
NOT_FINITE = "feature 2 (d2): a coordinate is not a finite number"
OFF_THE_GLOBE = (
    "feature 2 (d2): a point lies beyond longitude -180 to 180 or latitude -90 to 90 once reprojected to EPSG:4326"
    " (is the file's coordinate reference system right?)"
)


def ring_wkb(*points: tuple[float, float]) -> bytes:
    """Return the ISO WKB of a polygon of one ring, whatever its numbers (shapely writes no NaN)."""
    return struct.pack("<BIII", 1, 3, 1, len(points)) + struct.pack(f"<{2 * len(points)}d", *sum(points, ()))


def absurd_file(case: str, tmp_path: Path) -> bytes:
    """Return a file of two districts, "d1" fine and "d2" with the coordinates ``case`` names."""
    huge = {"type": "Polygon", "coordinates": [[[0, 0], [1e300, 0], [1e300, 1e300], [0, 0]]]}
    if case == "geojson, 1e308 degrees":
        polygon = {"type": "Polygon", "coordinates": [[[0, 0], [1e308, 0], [1e308, 1e308], [0, 0]]]}
        return collection([feature("d1", square(0)), feature("d2", polygon)])
    if case == "geojson, 1e300 metres in UTM":
        return collection([feature("d1", square(0)), feature("d2", huge)], crs=UTM)
    numbers = {"geopackage, NaN": (NAN, 0.0), "geopackage, infinity": (INF, 0.0)}.get(case, (1e300, 0.0))
    blobs = [
        geometry_blob(box(0, 0, 1, 1)),
        geometry_blob(box(0, 0, 1, 1), wkb=ring_wkb((0, 0), numbers, (1, 1), (0, 0))),
    ]
    data = geopackage_of(tmp_path, blobs)
    if case == "geopackage, 1e300 metres in UTM":
        with sqlite3.connect(tmp_path / "blobs.gpkg") as connection:
            connection.execute(
                "INSERT INTO gpkg_spatial_ref_sys VALUES ('UTM 43N', 32643, 'EPSG', 32643, 'undefined', '')"
            )
            connection.execute("UPDATE gpkg_geometry_columns SET srs_id = 32643")
            connection.execute("UPDATE gpkg_contents SET srs_id = 32643")
        connection.close()
        data = (tmp_path / "blobs.gpkg").read_bytes()
    return data


ABSURD = {
    "geopackage, NaN": NOT_FINITE,
    "geopackage, infinity": NOT_FINITE,
    "geopackage, 1e300 metres in UTM": OFF_THE_GLOBE,  # reprojected to infinities
    "geojson, 1e300 metres in UTM": OFF_THE_GLOBE,
    "geojson, 1e308 degrees": OFF_THE_GLOBE,
}


@pytest.mark.parametrize("case", ABSURD)
def test_a_coordinate_off_the_globe_is_refused_naming_the_feature(tmp_path, case):
    assert refusal(absurd_file(case, tmp_path)) == ABSURD[case]


@pytest.mark.parametrize("case", ABSURD)
def test_the_upload_page_refuses_coordinates_off_the_globe_and_keeps_the_districts(advocate, app, tmp_path, case):
    client, token = advocate
    upload(client, token, "/advocacy/data/districts", geojson(), "good.geojson", name_field="rayon")

    response = upload(client, token, "/advocacy/data/districts", absurd_file(case, tmp_path), "rayons.gpkg")

    assert response.status_code == 422
    assert ABSURD[case] in text(response)
    assert districts(app) == ["Lenin", "Pervomay"]


@pytest.mark.parametrize("case", ABSURD)
def test_the_command_line_refuses_coordinates_off_the_globe(runner, app, tmp_path, case):
    path = tmp_path / "rayons.gpkg"
    path.write_bytes(absurd_file(case, tmp_path))

    result = runner.invoke(args=["districts", "import", str(path)])

    assert result.exit_code == 1
    assert f"Error: {ABSURD[case]}" in result.output
    with app.extensions["mapsvc.store"].reader() as session:
        assert load_districts(session) == []


def test_an_error_of_geos_repairing_a_polygon_names_the_feature(monkeypatch):
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}

    def failing(geometry: BaseGeometry) -> BaseGeometry:
        raise shapely.errors.GEOSException("TopologyException: side location conflict")

    monkeypatch.setattr(shapely, "make_valid", failing)

    assert refusal(collection([feature("d1", square(0)), feature("d2", bowtie)])) == (
        "feature 2 (d2): the polygon is invalid and cannot be repaired"
    )
