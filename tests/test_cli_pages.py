"""The command line (schema, demo data, pruning, heat rebuild) and the pages for people."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import h3
import pytest
from shapely.geometry import mapping
from sqlalchemy import delete, inspect, text

from mapsvc.core.area import ServiceArea
from mapsvc.store.models import HeatSeries, HeatStep
from mapsvc.web.basemap import build_map
from tests.conftest import BISHKEK, NOW
from tests.helpers import (
    HOME_CELL,
    bucket_of,
    cell_centre,
    heat_cells,
    post_device,
    read_stale_s_later,
    stored_counts,
    stored_events,
)

HOME = cell_centre(HOME_CELL)
AREA = ServiceArea.from_config("bishkek")


class Tags(HTMLParser):
    """Collect every start tag with its attributes, and the text of <code> and role=alert elements."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.codes: list[str] = []
        self.alerts: list[str] = []
        self._in: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        kind = "code" if tag == "code" else "alert" if dict(attrs).get("role") == "alert" else ""
        self._in.append(kind)

    def handle_endtag(self, tag: str) -> None:
        if self._in:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if "code" in self._in:
            self.codes.append(data.strip())
        if "alert" in self._in:
            self.alerts.append(data.strip())

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


# --- command line --------------------------------------------------------------------------------


@pytest.fixture
def empty_database(app_config, tmp_path, migrated_template):
    """Point the app at a database that has no schema yet."""
    app_config["DATABASE_URL"] = migrated_template.empty(tmp_path)


def test_db_upgrade_creates_the_schema(empty_database, app, runner, client):
    result = runner.invoke(args=["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert {"events", "reports", "heat_series", "heat_steps"} <= set(
        inspect(app.extensions["mapsvc.store"].engine).get_table_names()
    )
    report = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]}
    assert client.post("/api/reports", json=report).status_code == 201


def test_db_upgrade_twice_keeps_schema_and_data(app, runner, report):
    report()
    runner.invoke(args=["db", "upgrade"])

    result = runner.invoke(args=["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert stored_counts(app) == (1, 1)
    with app.extensions["mapsvc.store"].reader() as session:
        assert session.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def _run_demo(runner, reports: int = 300) -> Any:
    result = runner.invoke(args=["demo", "--reports", str(reports), "--days", "10", "--seed", "1"])
    assert result.exit_code == 0, result.output
    return result


def test_demo_adds_the_reports(app, runner):
    _run_demo(runner)

    events, reports = stored_counts(app)
    assert reports == 300
    assert 0 < events <= reports


def test_demo_reports_fall_within_the_days_asked(app, runner):
    _run_demo(runner)

    buckets = [e.bucket_start for e in stored_events(app)]
    assert min(buckets) >= NOW - timedelta(days=11)  # 10 days, floored to a day bucket
    assert max(buckets) <= NOW


def test_demo_reports_fall_in_the_area(app, runner):
    _run_demo(runner)

    assert all(AREA.contains(e.lat, e.lon) for e in stored_events(app))


def test_demo_events_cluster_in_hot_cells(app, runner):
    _run_demo(runner)

    per_cell = Counter(e.heat_cell for e in stored_events(app))
    events = sum(per_cell.values())
    in_hot_cells = sum(n for n in per_cell.values() if n >= 3) / events
    # Spread evenly over the area's cells (Poisson, mean λ), an event shares its cell with two
    # or more others with probability 1 - e^(-λ)(1 + λ).
    density = events / len(h3.geo_to_cells(mapping(AREA.geometry), 8))
    if_even = 1 - math.exp(-density) * (1 + density)
    assert in_hot_cells > 2 * if_even


def test_demo_shows_heat(client, runner):
    _run_demo(runner)

    assert heat_cells(client)


# prune: (category, how long before NOW it happened, kept with a retention of 1 day)
PRUNED = {
    "faded, past retention": ("checkpoint", timedelta(days=2), False),
    "faded, within retention": ("checkpoint", timedelta(hours=20), True),
    "live": ("checkpoint", timedelta(hours=1), True),
    "raid, visible, past retention": ("raid", timedelta(days=2), True),
    "raid, faded, past retention": ("raid", timedelta(days=14), False),
    "attack, visible, past retention": ("attack", timedelta(days=30), True),
}


@pytest.fixture
def short_retention(app_config):
    app_config["RETENTION_DAYS"] = 1


def _fill_for_pruning(client) -> dict[str, str]:
    return {
        name: post_device(client, HOME, category=category, occurred_at=NOW - age).event_id
        for name, (category, age, _) in PRUNED.items()
    }


def test_prune_deletes_only_faded_events_past_retention(short_retention, app, client, runner):
    ids = _fill_for_pruning(client)

    result = runner.invoke(args=["prune"])

    assert result.exit_code == 0, result.output
    kept = {e.public_id for e in stored_events(app)}
    assert kept == {ids[name] for name, (_, _, keep) in PRUNED.items() if keep}


def test_prune_reports_how_many_it_deleted(short_retention, client, runner):
    _fill_for_pruning(client)

    result = runner.invoke(args=["prune"])

    assert f"{sum(not keep for *_, keep in PRUNED.values())} events pruned" in result.output


@pytest.mark.parametrize("path", ["/api/layers", "/api/heat", "/"])
def test_views_answer_with_a_retention_shorter_than_the_longest_fading(short_retention, client, path):
    assert client.get(path).status_code == 200


def test_prune_leaves_current_heat_unchanged(short_retention, client, runner):
    # Three attacks still count, one has faded: past retention, it is pruned, yet must stay faded.
    for days in (20, 25, 35, 70):
        post_device(client, HOME, category="attack", occurred_at=NOW - timedelta(days=days))
    _fill_for_pruning(client)
    before = heat_cells(client, category="attack")
    assert before[HOME_CELL]["events"] == 4  # with the one from _fill_for_pruning

    runner.invoke(args=["prune"])
    read_stale_s_later(client.application)

    assert heat_cells(client, category="attack") == before


def test_heat_rebuild_restores_lost_heat(app, client, runner):
    for k in range(4):
        post_device(client, HOME, occurred_at=NOW - timedelta(hours=k))
    before = heat_cells(client)
    with app.extensions["mapsvc.store"].writing() as session:
        session.execute(delete(HeatStep))
        session.execute(delete(HeatSeries))
    read_stale_s_later(app)
    assert heat_cells(client) == {}

    result = runner.invoke(args=["heat", "rebuild"])
    read_stale_s_later(app)

    assert result.exit_code == 0, result.output
    assert "heat rebuilt from 4 events" in result.output
    assert heat_cells(client) == before


# --- pages -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("filled", [False, True], ids=["empty map", "map with events and heat"])
def test_map_page_answers(client, filled):
    if filled:
        for k in range(3):
            post_device(client, HOME, occurred_at=NOW - timedelta(hours=k))

    response = client.get("/")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert Tags(response.get_data(as_text=True)).find("div", **{"class": "folium-map"})


@pytest.mark.parametrize("filled", [False, True], ids=["empty map", "map with events and heat"])
def test_map_page_loads_only_local_assets(client, filled):
    if filled:
        for k in range(3):
            post_device(client, HOME, occurred_at=NOW - timedelta(hours=k))
    page = Tags(client.get("/").get_data(as_text=True))

    sources = [a.get("src") for a in page.find("script") if a.get("src")]
    sources += [a.get("href") for a in page.find("link") if a.get("href") and a.get("rel") == "stylesheet"]

    assert any(s.split("?")[0].endswith("leaflet.js") for s in sources)
    assert all(s.startswith("/static/") for s in sources), sources
    for source in sources:
        with client.get(source) as asset:
            assert asset.status_code == 200, source


def _map_of(app, tiles: bool = False) -> Any:
    with app.test_request_context():
        return build_map(AREA.bounds, tiles, "© OpenStreetMap contributors")


def test_map_without_tiles_has_no_tile_layer(app):
    children = _map_of(app).to_dict()["children"]

    assert sorted(c["name"] for c in children.values()) == ["FitBounds"]


def test_map_tiles_come_through_this_service(app):
    [layer] = [c for c in _map_of(app, tiles=True)._children.values() if type(c).__name__ == "TileLayer"]

    assert layer.tiles == "/tiles/{z}/{x}/{y}.png"
    assert "OpenStreetMap" in layer.options["attribution"]


def test_map_assets_are_served_here(app):
    m = _map_of(app)

    assert all(url.startswith("/static/") for _, url in m.default_js + m.default_css)


def test_map_fits_the_service_area(app):
    min_lon, min_lat, max_lon, max_lat = AREA.bounds
    [fit] = [c for c in _map_of(app)._children.values() if type(c).__name__ == "FitBounds"]

    assert [list(corner) for corner in fit.bounds] == [
        pytest.approx([min_lat, min_lon]),
        pytest.approx([max_lat, max_lon]),
    ]


def test_report_form_works_without_javascript(client):
    page = Tags(client.get("/report").get_data(as_text=True))

    [form] = page.find("form")
    assert form["method"] == "post" and form["action"] == "/report"
    assert [a["src"].split("?")[0] for a in page.find("script")] == ["/static/js/exit.js"]  # quick exit only
    names = {a.get("name") for t, a in page.tags if t in {"input", "select", "textarea"}}
    assert {"category", "lat", "lon", "occurred_at", "perpetrator", "details"} <= names
    assert page.find("button", type="submit")


FORM = {"category": "checkpoint", "lat": "42.874612", "lon": "74.569834", "perpetrator": "police"}


def test_report_form_stores_a_server_fuzzed_report(app, client):
    response = client.post("/report", data=FORM)

    assert response.status_code == 201
    [event] = stored_events(app)
    assert (event.lat, event.lon) != (round(float(FORM["lat"]), 4), round(float(FORM["lon"]), 4))
    assert AREA.contains(event.lat, event.lon)


def test_report_form_ignores_a_claim_of_device_fuzzing(app, client):
    client.post("/report", data={**FORM, "fuzzed_on_device": "true"})

    [event] = stored_events(app)
    assert (event.lat, event.lon) != (round(float(FORM["lat"]), 4), round(float(FORM["lon"]), 4))


def test_report_form_takes_local_time(app, client):
    # 03:47 in Bishkek is 21:47 UTC the day before.
    client.post("/report", data={**FORM, "occurred_at": "2026-06-16T03:47"})

    [event] = stored_events(app)
    assert event.bucket_start == bucket_of(datetime(2026, 6, 15, 21, 47, tzinfo=UTC), "checkpoint")


def test_report_form_shows_a_working_withdrawal_code(app, client):
    page = Tags(client.post("/report", data=FORM).get_data(as_text=True))

    report_id, code = page.codes
    assert client.delete(f"/api/reports/{report_id}", headers={"X-Withdrawal-Code": code}).status_code == 204
    assert stored_counts(app) == (0, 0)


BAD_FORMS = {
    "lat not a number": ({"lat": "north"}, "lat"),
    "lon out of range": ({"lon": "200"}, "lon"),
    "no category": ({"category": ""}, "category"),
    "unknown category": ({"category": "party"}, "category"),
    "outside the area": ({"lat": "41.5", "lon": "74.5"}, "lat"),
    "in the future": ({"occurred_at": "2026-06-17T10:00"}, "occurred_at"),
}


@pytest.mark.parametrize(("changes", "field"), list(BAD_FORMS.values()), ids=list(BAD_FORMS))
def test_bad_report_form_is_shown_again_with_the_error(client, changes, field):
    response = client.post("/report", data={**FORM, **changes})

    assert response.status_code == 422
    page = Tags(response.get_data(as_text=True))
    [alert] = page.alerts
    assert field.split("_")[0] in alert
    assert page.find("form", action="/report")
    kept = {a.get("name"): a.get("value") for a in page.find("input") if a.get("name") in {"lat", "lon"}}
    assert kept == {"lat": changes.get("lat", FORM["lat"]), "lon": changes.get("lon", FORM["lon"])}


@pytest.mark.parametrize(("changes", "field"), list(BAD_FORMS.values()), ids=list(BAD_FORMS))
def test_bad_report_form_stores_nothing(app, client, changes, field):
    client.post("/report", data={**FORM, **changes})

    assert stored_counts(app) == (0, 0)


def _form_report(client) -> tuple[str, str]:
    report_id, code = Tags(client.post("/report", data=FORM).get_data(as_text=True)).codes
    return report_id, code


def test_withdraw_form_withdraws(app, client):
    report_id, code = _form_report(client)

    response = client.post("/report/withdraw", data={"report_id": report_id, "withdrawal_code": code})

    assert response.status_code == 200
    assert stored_counts(app) == (0, 0)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"withdrawal_code": "wrong"}, 404),
        ({"report_id": "no-such-report"}, 404),
        ({"withdrawal_code": ""}, 422),
        ({"report_id": ""}, 422),
    ],
)
def test_withdraw_form_without_a_match_keeps_the_report(app, client, data, status):
    report_id, code = _form_report(client)

    response = client.post("/report/withdraw", data={"report_id": report_id, "withdrawal_code": code, **data})

    assert response.status_code == status
    assert Tags(response.get_data(as_text=True)).alerts
    assert stored_counts(app) == (1, 1)


def test_withdraw_form_page_works_without_javascript(client):
    page = Tags(client.get("/report/withdraw").get_data(as_text=True))

    assert page.find("form", method="post", action="/report/withdraw")
    assert [a["src"].split("?")[0] for a in page.find("script")] == ["/static/js/exit.js"]  # quick exit only
