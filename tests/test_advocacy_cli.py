"""The advocates' command line: districts import, exports, charts and hotspots; files open with GDAL."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import timedelta

import geopandas as gpd
import h3
import pytest
from shapely.geometry import Polygon, box

from mapsvc.store.advocacy import load_districts
from tests.conftest import BISHKEK, NOW
from tests.helpers import post_device

CELL = h3.latlng_to_cell(*BISHKEK, 7)
QUESTION = ["--from", "2026-05", "--to", "2026-06", "--permutations", "99", "--seed", "1"]


def districts_frame(crs: int = 4326) -> gpd.GeoDataFrame:
    west = box(74.45, 42.80, 74.5698, 42.95)
    east = box(74.5698, 42.80, 74.70, 42.95)
    frame = gpd.GeoDataFrame({"rayon": ["Lenin", "Pervomay"]}, geometry=[west, east], crs=4326)
    return frame.to_crs(crs)


@pytest.fixture
def events(client):
    lat, lon = h3.cell_to_latlng(CELL)
    for i in range(6):
        post_device(
            client, (round(lat, 4), round(lon, 4)), "raid", NOW - timedelta(days=3, hours=i), perpetrator="police"
        )


def test_districts_import_from_geojson(runner, app, tmp_path):
    path = tmp_path / "rayons.geojson"
    districts_frame().to_file(path, driver="GeoJSON")

    result = runner.invoke(args=["districts", "import", str(path), "--name-field", "rayon"])

    assert result.exit_code == 0, result.output
    with app.extensions["mapsvc.store"].reader() as session:
        assert [d.name for d in load_districts(session)] == ["Lenin", "Pervomay"]


def test_districts_import_reprojects_a_geopackage(runner, app, tmp_path):
    path = tmp_path / "rayons.gpkg"
    districts_frame(32643).to_file(path, driver="GPKG")  # UTM zone 43N, metres

    result = runner.invoke(args=["districts", "import", str(path), "--name-field", "rayon"])

    assert result.exit_code == 0, result.output
    with app.extensions["mapsvc.store"].reader() as session:
        lenin = load_districts(session)[0]
    assert lenin.geometry.bounds == pytest.approx((74.45, 42.80, 74.5698, 42.95), abs=1e-6)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: districts_frame().to_file(p, driver="GeoJSON"), "no field 'name'"),
        (lambda p: p.write_text("{not json"), "cannot read"),
        (
            lambda p: gpd.GeoDataFrame({"name": ["A", "A"]}, geometry=[box(0, 0, 1, 1)] * 2, crs=4326).to_file(p),
            "appears twice",
        ),
        (
            lambda p: gpd.GeoDataFrame({"name": ["A"]}, geometry=[box(0, 0, 1, 1).exterior], crs=4326).to_file(p),
            "not a polygon",
        ),
    ],
)
def test_bad_district_files_are_refused_and_nothing_is_written(runner, app, tmp_path, make, message):
    good = tmp_path / "good.geojson"
    districts_frame().rename(columns={"rayon": "name"}).to_file(good, driver="GeoJSON")
    runner.invoke(args=["districts", "import", str(good)])
    bad = tmp_path / "bad.geojson"
    make(bad)

    result = runner.invoke(args=["districts", "import", str(bad)])

    assert result.exit_code != 0 and message in result.output
    with app.extensions["mapsvc.store"].reader() as session:
        assert len(load_districts(session)) == 2


@pytest.mark.parametrize(
    ("kind", "fmt"), [("areas", "gpkg"), ("areas", "geojson"), ("events", "gpkg"), ("events", "geojson")]
)
@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL's ogrinfo is not installed")
def test_exports_open_with_gdal(runner, events, tmp_path, kind, fmt):
    out = tmp_path / f"{kind}.{fmt}"

    result = runner.invoke(args=["advocacy", "export", kind, "--format", fmt, "--out", str(out), *QUESTION])
    info = subprocess.run(["ogrinfo", "-so", "-al", str(out)], capture_output=True, text=True, check=True).stdout

    assert result.exit_code == 0, result.output
    assert "Feature Count: 1" in info if kind == "areas" else "Feature Count: 6" in info
    assert "WGS 84" in info


def test_export_csv_and_district_grouping(runner, events, tmp_path):
    path = tmp_path / "rayons.geojson"
    districts_frame().to_file(path, driver="GeoJSON")
    runner.invoke(args=["districts", "import", str(path), "--name-field", "rayon"])
    out = tmp_path / "areas.csv"

    result = runner.invoke(args=["advocacy", "export", "areas", "--out", str(out), "--group", "district", *QUESTION])

    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[1].startswith("district,") and lines[1].endswith(",2026-06,raid,6")


def test_offline_map_and_chart(runner, events, tmp_path):
    html, svg = tmp_path / "map.html", tmp_path / "hour.svg"

    made_map = runner.invoke(args=["advocacy", "export", "map", "--format", "html", "--out", str(html), *QUESTION])
    made_chart = runner.invoke(args=["advocacy", "chart", "hour", "--out", str(svg), *QUESTION])

    assert made_map.exit_code == 0 and "L.map(" in html.read_text()
    assert made_chart.exit_code == 0 and svg.read_text().lstrip().startswith("<?xml")


def test_hotspots_print_method_and_table(runner, events):
    result = runner.invoke(args=["advocacy", "hotspots", *QUESTION])

    assert result.exit_code == 0, result.output
    assert "Gi* on H3 resolution 7" in result.output and "99 permutations, seed 1" in result.output
    assert "cell\tkind\tevents\tz\tp" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--from", "May"], "from: a month is written YYYY-MM"), (["--category", "parade"], "category: unknown")],
)
def test_bad_options_are_named(runner, tmp_path, args, message):
    out = tmp_path / "x.csv"
    result = runner.invoke(args=["advocacy", "export", "areas", "--out", str(out), *args])

    assert result.exit_code != 0 and message in result.output
    assert not out.exists()


def test_geojson_features_are_polygons_of_the_cells(runner, events, tmp_path):
    out = tmp_path / "areas.geojson"
    runner.invoke(args=["advocacy", "export", "areas", "--format", "geojson", "--out", str(out), *QUESTION])
    feature = json.loads(out.read_text())["features"][0]

    assert feature["properties"]["area"] == CELL and feature["properties"]["raid"] == 6
    assert Polygon(feature["geometry"]["coordinates"][0]).contains(
        Polygon(feature["geometry"]["coordinates"][0]).centroid
    )
