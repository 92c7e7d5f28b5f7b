"""The advocates' pages and files: who may see them, what they hold, bad input named, on both engines."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import geopandas as gpd
import h3
import pytest

from mapsvc.core.roles import Role
from tests.conftest import BISHKEK, NOW
from tests.helpers import post_device, sign_in

#: Atom cells (resolution 7) around the centre of Bishkek.
CENTRE7 = h3.latlng_to_cell(*BISHKEK, 7)
BUSY, QUIET = sorted(h3.grid_ring(CENTRE7, 1))[:2]


def centre(cell: str) -> tuple[float, float]:
    lat, lon = h3.cell_to_latlng(cell)
    return round(lat, 4), round(lon, 4)


@pytest.fixture
def seeded(client, app):
    """Six raids by police in one cell (published), two in another (hidden), two attacks (heat only)."""
    when = NOW - timedelta(days=20)
    for i in range(6):
        post_device(client, centre(BUSY), "raid", when + timedelta(hours=i * 5), perpetrator="police")
    for i in range(2):
        post_device(client, centre(QUIET), "raid", when + timedelta(hours=i * 5), perpetrator="police")
    for i in range(6):
        post_device(client, centre(CENTRE7), "attack", when - timedelta(days=i * 2), perpetrator="client")
    sign_in(client, app, Role.ADVOCATE)
    return client


QUESTION = {"from": "2026-05", "to": "2026-06", "permutations": "99", "seed": "1"}


def test_the_page_shows_published_counts_and_the_method(seeded):
    response = seeded.get("/advocacy/", query_string=QUESTION)
    html = response.get_data(as_text=True)

    assert response.status_code == 200
    assert f"<td>{BUSY}</td><td>2026-05</td><td>Raid</td><td>6</td>" in html
    assert QUIET not in html
    assert "Getis-Ord Gi*" in html and "Benjamini-Hochberg" in html
    assert "cdn" not in html.lower()


@pytest.mark.parametrize("role", [Role.PEER, Role.MODERATOR, Role.PLANNER])
@pytest.mark.parametrize("path", ["/advocacy/", "/advocacy/exports/areas.csv", "/advocacy/charts/hour.png"])
def test_other_roles_are_refused(client, app, role, path):
    sign_in(client, app, role)

    assert client.get(path).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/advocacy/exports/events.geojson")

    assert response.status_code == 303 and "/login" in response.headers["Location"]


def test_the_csv_holds_only_published_atoms(seeded):
    response = seeded.get("/advocacy/exports/areas.csv", query_string=QUESTION)
    lines = response.get_data(as_text=True).splitlines()

    assert response.headers["Content-Disposition"].startswith("attachment")
    assert lines[0] == "area_type,area,month,category,events"
    assert f"cell,{BUSY},2026-05,raid,6" in lines
    assert len(lines) == 3  # the busy raids and the six attacks (all in May, attacks on daily buckets)


def test_the_district_csv_counts_atoms_by_cell_centre(seeded, app):
    from shapely.geometry import Polygon

    from mapsvc.core.districts import District
    from mapsvc.store.advocacy import replace_districts

    with app.extensions["mapsvc.store"].writing() as session:
        ring = [(lon, lat) for lat, lon in h3.cell_to_boundary(BUSY)]
        replace_districts(session, [District("Busy district", Polygon(ring).buffer(0.001))], NOW)
    response = seeded.get("/advocacy/exports/areas.csv", query_string={**QUESTION, "group": "district"})
    lines = response.get_data(as_text=True).splitlines()

    assert "district,Busy district,2026-05,raid,6" in lines
    assert "district,(outside the districts),2026-05,attack,6" in lines


def test_public_events_leave_out_heat_only_categories(seeded):
    body = json.loads(seeded.get("/advocacy/exports/events.geojson", query_string=QUESTION).get_data())

    assert len(body["features"]) == 8
    assert {f["properties"]["category"] for f in body["features"]} == {"raid"}


@pytest.mark.parametrize("kind", ["areas", "events"])
def test_geopackages_open_with_geopandas(seeded, tmp_path, kind):
    response = seeded.get(f"/advocacy/exports/{kind}.gpkg", query_string=QUESTION)
    path = tmp_path / f"{kind}.gpkg"
    path.write_bytes(response.get_data())
    frame = gpd.read_file(path)

    assert frame.crs.to_epsg() == 4326
    assert len(frame) == (2 if kind == "areas" else 8)
    assert sqlite3.connect(path).execute("select count(*) from gpkg_contents").fetchone()[0] == 1


@pytest.mark.parametrize("kind", ["month-category", "month-perpetrator", "hour", "weekday", "compare"])
@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_charts_are_drawn(seeded, kind, fmt):
    response = seeded.get(f"/advocacy/charts/{kind}.{fmt}", query_string={**QUESTION, "compare_from": "2026-03"})
    data = response.get_data()

    assert response.status_code == 200
    assert data.startswith(b"\x89PNG") if fmt == "png" else b"<svg" in data[:400]


def test_the_offline_map_inlines_every_asset(seeded):
    response = seeded.get("/advocacy/exports/map.html", query_string=QUESTION)
    html = response.get_data(as_text=True)

    assert response.status_code == 200
    assert re.search(r"<(script|link|img)[^>]*(src|href)=", html) is None
    assert "L.map(" in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "mapsvc-legend" in html and "Benjamini-Hochberg" in html


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13"}, "from"),
        ({"from": "2026-06", "to": "2026-01"}, "to"),
        ({"category": "raid,parade"}, "category"),
        ({"perpetrator": "aliens"}, "perpetrator"),
        ({"resolution": "9"}, "resolution"),
        ({"group": "street"}, "group"),
        ({"permutations": "5"}, "permutations"),
        ({"alpha": "x"}, "alpha"),
        ({"resolution": "4", "permutations": "99999"}, "resolution"),
    ],
)
def test_bad_questions_are_refused_naming_the_field(seeded, params, field):
    response = seeded.get("/advocacy/", query_string=params, headers={"Accept": "application/json"})

    assert response.status_code == 422
    assert response.get_json()["field"] == field


def test_an_unknown_export_is_404(seeded):
    assert seeded.get("/advocacy/exports/areas.shp").status_code == 404


def test_the_report_page_prints_the_date_range(seeded):
    html = seeded.get("/advocacy/report", query_string=QUESTION).get_data(as_text=True)

    assert "2026-05 to 2026-06" in html
    assert "@media print" in (Path(__file__).parents[1] / "static/css/advocacy.css").read_text()


def test_charts_speak_the_readers_language(seeded, monkeypatch):
    from mapsvc.core import charts

    drawn = {}
    monkeypatch.setattr(
        charts,
        "stacked_bars",
        lambda title, labels, series, fmt, **kw: drawn.update(title=title, labels=labels, series=series, **kw) or b"",
    )

    seeded.get("/advocacy/charts/weekday.svg", query_string=QUESTION, headers={"Accept-Language": "ru"})

    assert drawn["title"].startswith("События по дням недели (Asia/Bishkek), 2026-05 – 2026-06")
    assert drawn["labels"][0] == "пн"
    assert "Облава" in drawn["series"] and drawn["ylabel"] == "События"
