"""Route planning through the app: import, the API, its errors, the exports, on both engines."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path
from typing import Any

import gpxpy
import pytest

from tests.conftest import NOW
from tests.helpers import post_device, sign_in
from tests.test_openapi import _assert_documented

DATA = Path(__file__).parent / "data" / "osm"
MOSCOW = DATA / "moscow-ostankino.osm.gz"
FROM = {"lat": 55.8100, "lon": 37.5900}
TO = {"lat": 55.8200, "lon": 37.6200}
STOPS = [{"lat": 55.8150, "lon": 37.6000}, {"lat": 55.8200, "lon": 37.6100}, {"lat": 55.8120, "lon": 37.6150}]


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "SERVICE_AREA": [37.58, 55.80, 37.63, 55.83], "TIMEZONE": "Europe/Moscow", "TILE_URL": ""}


@pytest.fixture
def imported(app, runner) -> Any:
    result = runner.invoke(args=["roads", "import", str(MOSCOW)])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def planner(app, client, imported) -> Any:
    token = sign_in(client, app, "planner")

    def post(path: str, body: Any) -> Any:
        return client.post(path, json=body, headers={"X-CSRF-Token": token})

    post.token = token  # type: ignore[attr-defined]
    return post


def test_import_reports_the_network_and_show_lists_it(imported, runner):
    assert "walk: 2010 nodes, 2420 street segments" in imported.output
    assert "moscow-ostankino.osm.gz" in runner.invoke(args=["roads", "show"]).output


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.osm.pbf", b"", "the file is empty"),
        ("broken.osm.pbf", b"this is not protobuf" * 50, "not a readable OSM PBF file"),
        ("broken.osm.gz", gzip.compress(b"<osm><node id='1'", mtime=0), "not valid OSM XML"),
        ("nostreets.osm", b"<osm version='0.6'><node id='1' lat='55.8' lon='37.6'/></osm>", "holds no"),
        ("city.csv", b"a,b", "not an OpenStreetMap extract by its name"),
    ],
    ids=["empty", "not-pbf", "broken-gzip", "no-streets", "not-osm"],  # stable across xdist workers
)
def test_import_errors_name_the_file_and_the_problem(runner, tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    result = runner.invoke(args=["roads", "import", str(path)])
    assert result.exit_code == 1
    assert f"Error: {name}: " in result.output and problem in result.output
    assert "Traceback" not in result.output


def test_routes_answer_both_routes_as_documented(client, planner):
    response = planner("/api/routes", {"from": FROM, "to": TO})
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "private, no-store"
    document = client.get("/api/openapi.json").get_json()
    _assert_documented(document, "/api/routes", "post", response)
    body = response.get_json()
    assert body["safest"]["geometry"] == body["shortest"]["geometry"]  # no events yet
    assert body["attribution"] == "© OpenStreetMap contributors"
    assert body["safest"]["duration_s"] == pytest.approx(body["safest"]["length_m"] / (4.5 / 3.6), abs=1)
    assert any(s["street"] for s in body["safest"]["steps"])


def test_a_reported_checkpoint_on_the_route_is_avoided(app, planner):
    shortest = planner("/api/routes", {"from": FROM, "to": TO}).get_json()["shortest"]
    line = shortest["geometry"]["coordinates"]
    lon, lat = line[len(line) // 2]
    post_device(app.test_client(), (lat, lon), "checkpoint", occurred_at=NOW)  # an anonymous peer's phone
    body = planner("/api/routes", {"from": FROM, "to": TO, "alpha": 30}).get_json()
    assert body["danger"]["events"] == 1
    assert body["shortest"]["in_danger_m"] > 0
    assert body["safest"]["in_danger_m"] < body["shortest"]["in_danger_m"]
    assert 0 < body["detour_m"] <= body["shortest"]["length_m"]
    ignored = planner("/api/routes", {"from": FROM, "to": TO, "alpha": 30, "weights": {"checkpoint": 0}}).get_json()
    assert ignored["danger"]["events"] == 0 and ignored["safest"]["geometry"] == ignored["shortest"]["geometry"]


def test_a_session_visits_every_stop_once(client, planner):
    response = planner("/api/sessions", {"start": FROM, "stops": STOPS, "end": TO})
    assert response.status_code == 200, response.get_json()
    _assert_documented(client.get("/api/openapi.json").get_json(), "/api/sessions", "post", response)
    plan = response.get_json()["safest"]
    assert sorted(plan["order"]) == [0, 1, 2]
    assert len(plan["legs"]) == 4
    ends = [leg["geometry"]["coordinates"] for leg in plan["legs"]]
    assert all(a[-1] == b[0] for a, b in itertools.pairwise(ends))
    assert plan["length_m"] == pytest.approx(sum(leg["length_m"] for leg in plan["legs"]), abs=0.5)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/routes", {"to": TO}, "from"),
        ("/api/routes", {"from": {"lat": 55.81}, "to": TO}, "from.lon"),
        ("/api/routes", {"from": FROM, "to": {"lat": 55.9, "lon": 37.9}}, "to"),
        ("/api/routes", {"from": FROM, "to": TO, "alpha": 1000}, "alpha"),
        ("/api/routes", {"from": FROM, "to": TO, "weights": {"parade": 1}}, "weights"),
        ("/api/routes", {"from": FROM, "to": TO, "weights": {"raid": 2}}, "weights.raid"),
        ("/api/routes", {"from": FROM, "to": TO, "at": "tonight"}, "at"),
        ("/api/routes", {"from": FROM, "to": TO, "at": "2027-01-01T00:00:00Z"}, "at"),
        ("/api/routes", {"from": FROM, "to": TO, "mode": "fly"}, "mode"),
        ("/api/sessions", {"start": FROM, "stops": []}, "stops"),
        ("/api/sessions", {"start": FROM, "stops": [FROM] * 16}, "stops"),
        ("/api/sessions", {"start": FROM, "stops": [FROM, {"lat": "x", "lon": 37.6}]}, "stops[1].lat"),
    ],
)
def test_bad_input_is_refused_naming_the_field(planner, path, body, field):
    response = planner(path, body)
    assert response.status_code == 422
    assert response.get_json()["field"] == field


def test_a_mode_without_a_network_is_a_conflict(planner):
    response = planner("/api/routes", {"from": FROM, "to": TO, "mode": "drive"})
    assert response.status_code == 409
    assert "mapsvc roads import" in response.get_json()["error"]


def test_gpx_export_parses_back(client, planner):
    plan = {"start": FROM, "stops": STOPS}
    response = client.post(
        "/plan/gpx", data={"csrf_token": planner.token, "kind": "sessions", "plan": json.dumps(plan)}
    )
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="route.gpx"'
    gpx = gpxpy.parse(response.get_data(as_text=True))
    assert [t.name for t in gpx.tracks] == ["Safest route", "Shortest route"]
    assert len(gpx.tracks[0].segments) == 4 and gpx.copyright_author == "OpenStreetMap contributors"
    assert gpx.waypoints[0].name == "Start" and len(gpx.waypoints) == 5
    assert (gpx.waypoints[-1].latitude, gpx.waypoints[-1].longitude) == (FROM["lat"], FROM["lon"])  # back to start


def test_route_sheet_is_in_the_users_language_with_osm_street_names(client, planner):
    plan = {"from": FROM, "to": TO}
    response = client.post(
        "/plan/sheet?lang=ru", data={"csrf_token": planner.token, "kind": "routes", "plan": json.dumps(plan)}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Лист маршрута" in page and "Поверните" in page
    assert "улица Руставели" in page  # OSM's own name, as mapped
    assert "OpenStreetMap" in page


def test_exports_need_the_csrf_token(client, planner):
    response = client.post("/plan/gpx", data={"kind": "routes", "plan": json.dumps({"from": FROM, "to": TO})})
    assert response.status_code == 403


def test_the_planner_page_offers_the_network_and_the_attribution(client, planner):
    page = client.get("/plan").get_data(as_text=True)
    config = json.loads(page.split('id="mapsvc-config">')[1].split("</script>")[0])
    assert config["planner"]["modes"] == ["walk"]
    assert config["planner"]["attribution"] == "© OpenStreetMap contributors"
    assert 'src="/static/js/planner.js' in page


def test_a_drivable_network_is_imported_beside_the_walkable_one_and_routes(runner, planner):
    result = runner.invoke(args=["roads", "import", str(MOSCOW), "--drive"])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(args=["roads", "show"]).output

    drive = planner("/api/routes", {"from": FROM, "to": TO, "mode": "drive"})

    assert "walk" in shown and "drive" in shown
    assert drive.status_code == 200, drive.get_json()
    crow_m = 2_179 - 300  # FROM to TO as the crow flies, less what snapping to the streets may save
    assert drive.get_json()["shortest"]["length_m"] > crow_m
