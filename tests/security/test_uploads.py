"""District uploads: a boundary file is read by what its bytes are, never by what GDAL guesses.

Security issue #12, findings 1 and 6. GDAL opened an upload with every driver on: a VRT file read
the accounts table of any SQLite database into district names, a ``CSV:`` source showed another
file's first line in the "no field" message, ``/vsicurl/`` fetched from other hosts, a zip was
opened, and the district count was checked only after the whole file was read. Each attack is
tried on the core reader, through the advocates' upload page and through the command line.
"""

from __future__ import annotations

import io
import json
import sqlite3
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import box

import mapsvc.core.districts as districts_module
from mapsvc.core.districts import DistrictFileError, read_districts
from mapsvc.core.roles import Role
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
    """Return the message with which the core reader refuses ``data``."""
    with pytest.raises(DistrictFileError) as refused:
        read_districts(io.BytesIO(data), **kwargs)
    return str(refused.value)


def assert_no_secret(*texts: str) -> None:
    for secret in (PASSWORD_HASH, "SECRETHASH", TOTP_SECRET, "SECRETFIRSTLINE", "another_secret_cell"):
        assert not any(secret in t for t in texts), f"{secret} leaked"


# The core reader.


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


def test_gdal_hands_over_no_geopackage_feature_past_the_limit(monkeypatch, tmp_path):
    monkeypatch.setattr(districts_module, "MAX_DISTRICTS", 3)
    read = pyogrio.read_dataframe
    handed: list[int] = []

    def counting(*args, **kwargs):
        frame = read(*args, **kwargs)
        handed.append(len(frame))
        return frame

    monkeypatch.setattr(pyogrio, "read_dataframe", counting)
    path = tmp_path / "many.gpkg"
    gpd.GeoDataFrame(
        {"name": [f"d{i}" for i in range(50)]}, geometry=[box(i, 0, i + 1, 1) for i in range(50)], crs=4326
    ).to_file(path)

    assert refusal(path.read_bytes()) == "the file holds more than 3 districts"
    assert handed == [4]


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


@pytest.mark.parametrize("gdal_fails", [False, True], ids=["read", "refused"])
def test_the_geopackage_copy_for_gdal_is_removed_read_or_refused(tmp_path, monkeypatch, gdal_fails):
    data = geopackage(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    if gdal_fails:
        monkeypatch.setattr(pyogrio, "read_dataframe", lambda *args, **kwargs: 1 / 0)
        assert refusal(data).endswith("GDAL cannot read the GeoPackage (ZeroDivisionError)")
    else:
        assert len(read_districts(io.BytesIO(data))) == 2
    assert list(scratch.iterdir()) == []


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
