"""A planner on a phone: signs in, taps a session's points on the map, sees both routes, gets the GPX."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gpxpy
import pytest

from mapsvc.core.roles import Role
from tests.browser.conftest import Service, served_app, shot
from tests.helpers import PASSWORD, make_account

MOSCOW = Path(__file__).resolve().parents[1] / "data" / "osm" / "moscow-ostankino.osm.gz"
#: Points to tap, in the Ostankino extract.
TAPS = [(55.8205, 37.5950), (55.8200, 37.6150), (55.8230, 37.6050)]


@pytest.fixture
def planning(tmp_path) -> Iterator[Service]:
    app = served_app(tmp_path, 5, SERVICE_AREA=[37.585, 55.806, 37.625, 55.824])
    result = app.test_cli_runner().invoke(args=["roads", "import", str(MOSCOW)])
    assert result.exit_code == 0, result.output
    make_account(app, Role.PLANNER, "planner-phone")
    with Service(app) as running:
        yield running


def tap(page: Any, lat: float, lon: float) -> None:
    """Tap the map where (lat, lon) is drawn."""
    point = page.evaluate(
        f"(() => {{ const p = window.mapsvcPlanner.map.latLngToContainerPoint([{lat}, {lon}]); return [p.x, p.y]; }})()"
    )
    box = page.locator("#mapsvc").bounding_box()
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])


def test_a_planner_plans_a_session_on_a_phone_and_downloads_it(page, planning, watched, tmp_path):
    page.goto(planning.url + "/plan?lang=en")
    assert "/login" in page.url
    page.fill("input[name=username]", "planner-phone")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/plan**")
    page.wait_for_selector("#mapsvc[data-danger]")
    assert "OpenStreetMap contributors" in page.text_content(".leaflet-control-attribution")

    tap(page, *TAPS[0])
    tap(page, *TAPS[1])
    page.wait_for_selector("#mapsvc[data-planned^='routes:']")
    assert page.is_visible("#results")
    assert "km" in page.text_content("#safest-summary") and "km" in page.text_content("#shortest-summary")
    shot(page, "30-planner-route")

    tap(page, *TAPS[2])
    page.wait_for_selector("#mapsvc[data-planned^='sessions:']")
    assert page.locator("#stops li").count() == 3
    assert "Stop 1" in page.text_content("#order")
    shot(page, "31-planner-session")

    with page.expect_download() as download:
        page.click("form.export[action$='/plan/gpx'] button")
    path = tmp_path / "route.gpx"
    download.value.save_as(path)
    gpx = gpxpy.parse(path.read_text())
    assert [w.name for w in gpx.waypoints] == ["Start", "Stop 1", "End"]
    assert gpx.tracks[0].length_2d() > 500

    assert watched["errors"] == []
    assert all(r.url.startswith(planning.url) for r in watched["requests"])


def test_danger_for_a_later_start_leaves_out_what_will_have_faded(page, planning):
    for category in ("checkpoint", "raid"):  # a checkpoint fades within hours, a raid over days
        body = {"category": category, "lat": TAPS[0][0], "lon": TAPS[0][1], "fuzzed_on_device": True}
        posted = urllib.request.Request(
            planning.url + "/api/reports", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(posted) as answer:
            assert answer.status == 201
    page.goto(planning.url + "/plan?lang=en")
    page.fill("input[name=username]", "planner-phone")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("#mapsvc[data-danger='2']")

    page.evaluate(
        """() => {
            const later = new Date(Date.now() + 24 * 3600 * 1000 - new Date().getTimezoneOffset() * 60000);
            const input = document.getElementById("plan-at");
            input.value = later.toISOString().slice(0, 16);
            input.dispatchEvent(new Event("change", { bubbles: true }));
        }"""
    )

    page.wait_for_selector("#mapsvc[data-danger='1']")  # the raid is still there, the checkpoint is not
