"""POST /api/reports and DELETE /api/reports/<id>: checks, fuzzing, time buckets, withdrawal."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mapsvc.core.area import ServiceArea
from tests.conftest import BISHKEK, NOW
from tests.helpers import (
    HOME_CELL,
    bucket_of,
    cell_centre,
    decay,
    event_by_public_id,
    heat_cells,
    iso,
    layer_ids,
    post_device,
    reported_event,
    sibling_cells,
    stored_counts,
    stored_events,
)

AREA = ServiceArea.from_config("bishkek")
_, _, _, NORTH_EDGE = AREA.bounds

#: Half a kilometre north of the service area: within device-noise reach, outside the area.
JUST_OUTSIDE = (round(NORTH_EDGE + 0.0045, 4), 74.6)


def test_created_report_answers_its_ids_and_code(report):
    response = report()

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"id", "withdrawal_code"}
    assert all(isinstance(body[k], str) and body[k] for k in ("id", "withdrawal_code"))


def test_created_report_is_stored_once(app, report):
    report()

    assert stored_counts(app) == (1, 1)


# (what is sent, in place of the defaults or None to leave the field out; status; named field)
INVALID = {
    "lat missing": ({"lat": None}, 422, "lat"),
    "lon missing": ({"lon": None}, 422, "lon"),
    "lat text": ({"lat": "forty-two"}, 422, "lat"),
    "lon text": ({"lon": "74,5698"}, 422, "lon"),
    "lat list": ({"lat": [42.8746]}, 422, "lat"),
    "lat NaN literal": ({"lat": math.nan}, 422, "lat"),
    "lon Infinity literal": ({"lon": math.inf}, 422, "lon"),
    "lat NaN text": ({"lat": "NaN"}, 422, "lat"),
    "lon -Infinity text": ({"lon": "-Infinity"}, 422, "lon"),
    "lat above 90": ({"lat": 90.00013}, 422, "lat"),
    "lat below -90": ({"lat": -91.52}, 422, "lat"),
    "lon above 180": ({"lon": 180.5003}, 422, "lon"),
    "lon below -180": ({"lon": -274.5698}, 422, "lon"),
    "lat boolean": ({"lat": True}, 422, "lat"),
    "lon boolean": ({"lon": False}, 422, "lon"),
    "category unknown": ({"category": "party"}, 422, "category"),
    "category missing": ({"category": None}, 422, "category"),
    "category not text": ({"category": 3}, 422, "category"),
    "perpetrator unknown": ({"perpetrator": "alien"}, 422, "perpetrator"),
    "unknown field": ({"true_lat": 42.8746}, 422, "true_lat"),
    "occurred_at malformed": ({"occurred_at": "yesterday evening"}, 422, "occurred_at"),
    "occurred_at impossible date": ({"occurred_at": "2026-02-30T10:00:00Z"}, 422, "occurred_at"),
    "occurred_at a number": ({"occurred_at": 1781562600}, 422, "occurred_at"),
    "occurred_at beyond clock skew": ({"occurred_at": iso(NOW + timedelta(minutes=5, seconds=1))}, 422, "occurred_at"),
    "occurred_at next day": ({"occurred_at": iso(NOW + timedelta(days=1))}, 422, "occurred_at"),
    "occurred_at too old": ({"occurred_at": iso(NOW - timedelta(days=365, seconds=1))}, 422, "occurred_at"),
    "details too long": ({"details": "x" * 1001}, 422, "details"),
    "details not text": ({"details": {"text": "hi"}}, 422, "details"),
    "fuzzed_on_device text": ({"fuzzed_on_device": "maybe"}, 422, "fuzzed_on_device"),
    "fuzzed_on_device number": ({"fuzzed_on_device": 1}, 422, "fuzzed_on_device"),
    "outside the service area": ({"lat": 41.4321, "lon": 75.9876}, 422, "lat"),
    "just outside, fuzzed by the server": ({"lat": JUST_OUTSIDE[0], "lon": JUST_OUTSIDE[1]}, 422, "lat"),
    "far outside, fuzzed on the device": ({"lat": 43.1234, "lon": 74.6, "fuzzed_on_device": True}, 422, "lat"),
}


def _body(changes: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1], **changes}
    return {k: v for k, v in body.items() if v is not None}


def _assert_no_coordinates(message: str, body: dict[str, Any]) -> None:
    sent = [body.get("lat"), body.get("lon"), *BISHKEK]
    for value in sent:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            assert str(value) not in message
            assert f"{value:.4f}" not in message
        elif isinstance(value, str):
            assert value not in message


@pytest.mark.parametrize(("changes", "status", "field"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_report_is_answered_with_its_field(client, changes, status, field):
    body = _body(changes)

    response = client.post("/api/reports", json=body)

    assert response.status_code == status
    assert response.is_json
    answer = response.get_json()
    assert answer.get("field") == field
    assert isinstance(answer["error"], str) and answer["error"]
    _assert_no_coordinates(answer["error"], body)


@pytest.mark.parametrize(("changes", "status", "field"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_report_stores_nothing(app, client, changes, status, field):
    client.post("/api/reports", json=_body(changes))

    assert stored_counts(app) == (0, 0)


NOT_AN_OBJECT = {
    "array": (json.dumps([BISHKEK[0], BISHKEK[1]]), "application/json"),
    "string": (json.dumps("checkpoint"), "application/json"),
    "number": ("42.8746", "application/json"),
    "null": ("null", "application/json"),
    "broken JSON": ('{"category": "checkpoint", "lat": 42.8746,', "application/json"),
    "form encoded": (f"category=checkpoint&lat={BISHKEK[0]}&lon={BISHKEK[1]}", "application/x-www-form-urlencoded"),
    "empty": ("", "application/json"),
}


@pytest.mark.parametrize(("data", "content_type"), list(NOT_AN_OBJECT.values()), ids=list(NOT_AN_OBJECT))
def test_body_that_is_not_a_json_object_is_refused(app, client, data, content_type):
    response = client.post("/api/reports", data=data, content_type=content_type)

    assert response.status_code == (415 if content_type != "application/json" else 400)
    assert response.is_json
    message = response.get_json()["error"]
    assert str(BISHKEK[0]) not in message and str(BISHKEK[1]) not in message
    assert stored_counts(app) == (0, 0)


def test_body_over_the_size_limit_is_refused_as_json(app, client):
    body = _body({"details": "x" * app.config["MAX_CONTENT_LENGTH"]})

    response = client.post("/api/reports", json=body)

    assert response.status_code == 413
    assert response.is_json
    assert "field" not in response.get_json()
    _assert_no_coordinates(response.get_json()["error"], body)
    assert stored_counts(app) == (0, 0)


# (category, occurred_at as sent, the bucket start it must get, UTC)
BUCKETS = {
    "checkpoint, UTC": ("checkpoint", "2026-06-15T21:47:13Z", datetime(2026, 6, 15, 21, tzinfo=UTC)),
    "checkpoint, offset": ("checkpoint", "2026-06-16T02:59:59+05:00", datetime(2026, 6, 15, 21, tzinfo=UTC)),
    # 03:47 in Bishkek (UTC+6) is 21:47 UTC the day before.
    "checkpoint, naive is Bishkek time": ("checkpoint", "2026-06-16T03:47:13", datetime(2026, 6, 15, 21, tzinfo=UTC)),
    "attack, UTC": ("attack", "2026-06-15T03:10:00Z", datetime(2026, 6, 15, tzinfo=UTC)),
    # 04:10 in Bishkek is 22:10 UTC on the 14th, so the UTC day is the 14th.
    "attack, naive is Bishkek time": ("attack", "2026-06-15T04:10:00", datetime(2026, 6, 14, tzinfo=UTC)),
    "raid, hour bucket": ("raid", "2026-06-10T08:00:00Z", datetime(2026, 6, 10, 8, tzinfo=UTC)),
    "extortion, day bucket": ("extortion", "2026-06-10T23:59:59Z", datetime(2026, 6, 10, tzinfo=UTC)),
    "omitted is now": ("checkpoint", None, datetime(2026, 6, 15, 22, tzinfo=UTC)),
}


@pytest.mark.parametrize(("category", "occurred_at", "bucket"), list(BUCKETS.values()), ids=list(BUCKETS))
def test_time_is_floored_to_the_category_bucket(app, client, category, occurred_at, bucket):
    response = client.post("/api/reports", json=_body({"category": category, "occurred_at": occurred_at}))

    assert response.status_code == 201, response.get_json()
    assert reported_event(app, response).bucket_start == bucket


@pytest.mark.parametrize("ahead", [timedelta(seconds=1), timedelta(minutes=4, seconds=59), timedelta(minutes=5)])
def test_occurred_at_within_the_clock_skew_is_taken_as_now(app, client, clock, ahead):
    clock.now = datetime(2026, 6, 15, 22, 58, tzinfo=UTC)  # the skew reaches into the next hour

    response = client.post("/api/reports", json=_body({"occurred_at": iso(clock.now + ahead)}))

    assert response.status_code == 201, response.get_json()
    assert reported_event(app, response).bucket_start == datetime(2026, 6, 15, 22, tzinfo=UTC)


@pytest.fixture(params=[False, True], ids=["details off", "details on"])
def store_details(request, app_config):
    app_config["STORE_DETAILS"] = request.param
    return request.param


def test_details_are_kept_only_when_turned_on(store_details, app, client):
    response = client.post("/api/reports", json=_body({"details": "  two officers at the corner  "}))

    stored = reported_event(app, response).details
    assert stored == ("two officers at the corner" if store_details else None)


def test_device_fuzzed_point_is_stored_as_sent_rounded(app, client):
    sent = (42.87461234, 74.56987654)

    response = post_device(client, sent)

    event = reported_event(app, response)
    assert (event.lat, event.lon) == (round(sent[0], 4), round(sent[1], 4))


def test_server_fuzzed_point_is_moved(app, report):
    response = report()

    event = reported_event(app, response)
    assert (event.lat, event.lon) != BISHKEK
    assert (event.lat, event.lon) == (round(event.lat, 4), round(event.lon, 4))


def test_device_point_just_outside_the_area_is_moved_inside(app, client):
    assert not AREA.contains(*JUST_OUTSIDE)

    response = post_device(client, JUST_OUTSIDE)

    event = reported_event(app, response)
    assert AREA.contains(event.lat, event.lon)
    # Moved to the nearest allowed point: about as far as the point lay outside, not across town.
    assert abs(event.lon - JUST_OUTSIDE[1]) < 0.001
    assert NORTH_EDGE - 0.001 < event.lat <= NORTH_EDGE


# --- withdrawal ------------------------------------------------------------------------------


def _withdraw(client, report_id: str, code: str, via: str):
    if via == "header":
        return client.delete(f"/api/reports/{report_id}", headers={"X-Withdrawal-Code": code})
    return client.delete(f"/api/reports/{report_id}", json={"withdrawal_code": code})


VIA = ["body", "header"]


@pytest.mark.parametrize("via", VIA)
def test_withdrawal_with_code_answers_204(client, report, via):
    created = report().get_json()

    response = _withdraw(client, created["id"], created["withdrawal_code"], via)

    assert response.status_code == 204
    assert response.data == b""


@pytest.mark.parametrize("via", VIA)
def test_withdrawn_event_leaves_the_layers(app, client, report, via):
    created, kept = report(), report(category="patrol")
    assert reported_event(app, created).public_id in layer_ids(client)

    _withdraw(client, created.get_json()["id"], created.get_json()["withdrawal_code"], via)

    assert layer_ids(client) == [reported_event(app, kept).public_id]
    assert stored_counts(app) == (1, 1)


@pytest.mark.parametrize("via", VIA)
def test_withdrawn_event_leaves_the_heat(client, via):
    point = cell_centre(HOME_CELL)
    moments = [NOW - timedelta(hours=k) for k in range(4)]
    created = [post_device(client, point, occurred_at=m).get_json() for m in moments]
    buckets = [bucket_of(m, "checkpoint") for m in moments]
    assert heat_cells(client)[HOME_CELL]["events"] == 4

    _withdraw(client, created[0]["id"], created[0]["withdrawal_code"], via)

    cell = heat_cells(client)[HOME_CELL]
    assert cell["events"] == 3
    expected = sum(decay(NOW, b, "checkpoint") for b in buckets[1:])
    assert cell["intensity"] == pytest.approx(expected, abs=1e-3)


def test_withdrawing_the_third_of_three_hides_the_heat_cell(client):
    point = cell_centre(HOME_CELL)
    created = [post_device(client, point, occurred_at=NOW - timedelta(hours=k)).get_json() for k in range(3)]
    assert HOME_CELL in heat_cells(client)

    _withdraw(client, created[2]["id"], created[2]["withdrawal_code"], "header")

    assert HOME_CELL not in heat_cells(client)


def _not_found_cases(created: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        "wrong code": (created["id"], created["withdrawal_code"] + "x"),
        "other report's code": (created["id"], "A" * len(created["withdrawal_code"])),
        "unknown id": ("no-such-report", created["withdrawal_code"]),
    }


@pytest.mark.parametrize("case", ["wrong code", "other report's code", "unknown id"])
@pytest.mark.parametrize("via", VIA)
def test_withdrawal_without_a_match_answers_404(app, client, report, case, via):
    created = report().get_json()
    report_id, code = _not_found_cases(created)[case]

    response = _withdraw(client, report_id, code, via)

    assert response.status_code == 404
    assert response.is_json
    assert stored_counts(app) == (1, 1)


def test_wrong_code_and_unknown_id_look_the_same(client, report):
    created = report().get_json()
    answers = [_withdraw(client, rid, code, "body") for rid, code in _not_found_cases(created).values()]

    assert len({(a.status_code, a.data, a.headers["Content-Type"]) for a in answers}) == 1


@pytest.mark.parametrize("via", VIA)
def test_second_withdrawal_answers_404(client, report, via):
    created = report().get_json()
    _withdraw(client, created["id"], created["withdrawal_code"], via)

    response = _withdraw(client, created["id"], created["withdrawal_code"], via)

    assert response.status_code == 404


@pytest.mark.parametrize("body", [None, {}, {"withdrawal_code": ""}, {"withdrawal_code": 12345}])
def test_withdrawal_without_a_code_answers_400_naming_it(app, client, report, body):
    created = report().get_json()

    response = client.delete(f"/api/reports/{created['id']}", json=body)

    assert response.status_code == 400
    assert response.get_json()["field"] == "withdrawal_code"
    assert stored_counts(app) == (1, 1)


def test_withdrawing_one_of_two_merged_reports_keeps_the_event(app, client):
    point = cell_centre(HOME_CELL)
    first, second = post_device(client, point), post_device(client, point)
    assert second.event_id == first.event_id

    _withdraw(client, first.get_json()["id"], first.get_json()["withdrawal_code"], "body")

    features = client.get("/api/layers").get_json()["features"]
    assert [f["id"] for f in features] == [first.event_id]
    assert features[0]["properties"]["corroborations"] == 1
    assert event_by_public_id(app, first.event_id).corroborations == 1
    assert stored_counts(app) == (1, 1)


def test_remaining_report_of_a_merged_event_can_still_withdraw_it(app, client):
    point = cell_centre(HOME_CELL)
    first = post_device(client, point).get_json()
    second = post_device(client, point).get_json()
    _withdraw(client, first["id"], first["withdrawal_code"], "body")

    response = _withdraw(client, second["id"], second["withdrawal_code"], "header")

    assert response.status_code == 204
    assert stored_counts(app) == (0, 0)
    assert stored_events(app) == []


def _shape(response) -> tuple[Any, ...]:
    """Return everything of an answer but the values of its fresh id, code and CSP nonce."""
    body = response.get_json()
    return (
        response.status_code,
        sorted(body),
        [len(body[k]) for k in sorted(body)],
        sorted((k, re.sub(r"'nonce-[^']+'", "'nonce'", v)) for k, v in response.headers.items() if k != "Date"),
    )


def test_the_answer_is_the_same_whether_the_report_merged_or_not(app, client):
    point = cell_centre(HOME_CELL)
    first = post_device(client, point)
    merged = post_device(client, point)
    elsewhere = post_device(client, cell_centre(sibling_cells(HOME_CELL, 1)[0]), category="patrol")
    assert merged.event_id == first.event_id != elsewhere.event_id  # the three cases did happen

    assert _shape(first) == _shape(merged) == _shape(elsewhere)


def test_the_answer_is_the_same_whether_a_point_was_reused_or_drawn(app, client, report):
    answers = [report(occurred_at=iso(NOW - timedelta(hours=k))) for k in range(3)]
    points = [reported_event(app, r) for r in answers]
    assert len({(e.lat, e.lon) for e in points}) < len(points)  # some reused an earlier draw

    assert len({str(_shape(r)) for r in answers}) == 1


@pytest.fixture
def answer_after_150_ms(app_config):
    app_config["INTAKE_ANSWER_MS"] = 150


def _timed(send) -> tuple[Any, float]:
    started = time.monotonic()
    response = send()
    return response, time.monotonic() - started


def test_a_stored_report_is_answered_no_sooner_than_the_fixed_moment(answer_after_150_ms, client):
    point = cell_centre(HOME_CELL)
    answers = [_timed(lambda: post_device(client, point)) for _ in range(2)]  # new, then merged
    answers.append(
        _timed(lambda: client.post("/api/reports", json={"category": "raid", "lat": point[0], "lon": point[1]}))
    )
    form = {"category": "patrol", "lat": str(point[0]), "lon": str(point[1])}
    answers.append(_timed(lambda: client.post("/report", data=form)))

    assert [r.status_code for r, _ in answers] == [201] * 4
    assert all(elapsed >= 0.150 for _, elapsed in answers), [elapsed for _, elapsed in answers]


def test_a_refused_report_is_answered_at_once(answer_after_150_ms, client):
    response, elapsed = _timed(lambda: client.post("/api/reports", json={"category": "party", "lat": 1, "lon": 2}))

    assert response.status_code == 422
    assert elapsed < 0.150  # its checks read nothing stored: nothing to hide
