"""No input is answered 500: each bad input of issue 13 gets a 4xx that names the field and the problem."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import BISHKEK
from tests.helpers import make_api_token, sign_in, stored_counts

REPORT = {"category": "checkpoint", "lat": BISHKEK[0], "lon": BISHKEK[1]}
ROUTE = {"from": {"lat": BISHKEK[0], "lon": BISHKEK[1]}, "to": {"lat": BISHKEK[0], "lon": BISHKEK[1] + 0.01}}
SESSION = {"start": ROUTE["from"], "stops": [ROUTE["to"]]}

#: Moments Python's datetime cannot shift by an offset or a day: year 1, and the last hour of 9999.
EXTREME_MOMENTS = ["0001-01-01T00:00:00", "9999-12-31T23:59:00-01:00"]

#: A whole number too large for a float (309 digits and more overflow it).
HUGE = int("9" * 400)


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "STORE_DETAILS": True}


@pytest.fixture
def staff(app) -> dict[str, str]:
    """Return the headers of an admin's API token (an admin may plan routes and moderate)."""
    return {"Authorization": f"Bearer {make_api_token(app, 'admin')}"}


def _json(client, method: str, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    """Send ``body`` as JSON text, as is (json.dumps writes lone surrogates and NUL as escapes)."""
    data = body if isinstance(body, str) else json.dumps(body)
    return client.open(path, method=method, data=data, content_type="application/json", headers=headers or {})


def _assert_refused(response, status: int, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    if field is None:
        assert "field" not in body
    else:
        assert body["field"] == field
        assert field in body["error"] or field == "path"
    return body


@pytest.mark.parametrize("moment", EXTREME_MOMENTS)
def test_report_time_out_of_range_is_refused(app, client, moment):
    response = client.post("/api/reports", json={**REPORT, "occurred_at": moment})

    body = _assert_refused(response, 422, "occurred_at")
    assert "1970" in body["error"] and "2999" in body["error"]
    assert stored_counts(app) == (0, 0)


@pytest.mark.parametrize("moment", EXTREME_MOMENTS)
def test_report_form_time_out_of_range_is_refused(app, client, moment):
    response = client.post("/report", data={**REPORT, "occurred_at": moment})

    assert response.status_code == 422
    assert "occurred_at must lie in the years 1970 to 2999" in response.get_data(as_text=True)
    assert stored_counts(app) == (0, 0)


@pytest.mark.parametrize("moment", EXTREME_MOMENTS)
@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/layers", "at"),
        ("/api/layers", "since"),
        ("/api/heat", "at"),
        ("/ogc/collections/checkpoint/items", "datetime"),
    ],
)
def test_read_moment_out_of_range_is_refused(client, path, parameter, moment):
    _assert_refused(client.get(path, query_string={parameter: moment}), 400, parameter)


@pytest.mark.parametrize(
    "value", ["9999-12-31", "0001-01-01/..", "../9999-12-31", "2026-06-01/9999-12-31T23:59:00-01:00"]
)
def test_ogc_datetime_out_of_range_is_refused(client, value):
    _assert_refused(client.get("/ogc/collections/checkpoint/items", query_string={"datetime": value}), 400, "datetime")


@pytest.mark.parametrize("moment", EXTREME_MOMENTS)
@pytest.mark.parametrize(("path", "body"), [("/api/routes", ROUTE), ("/api/sessions", SESSION)])
def test_plan_moment_out_of_range_is_refused(client, staff, path, body, moment):
    _assert_refused(_json(client, "POST", path, {**body, "at": moment}, staff), 422, "at")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/reports", {**REPORT, "lat": HUGE}, "lat"),
        ("/api/reports", {**REPORT, "lon": -HUGE}, "lon"),
        ("/api/routes", {**ROUTE, "from": {"lat": HUGE, "lon": 74.6}}, "from.lat"),
        ("/api/routes", {**ROUTE, "alpha": HUGE}, "alpha"),
        ("/api/routes", {**ROUTE, "weights": {"raid": HUGE}}, "weights.raid"),
        ("/api/sessions", {**SESSION, "stops": [{"lat": 42.8, "lon": HUGE}]}, "stops[0].lon"),
    ],
)
def test_huge_whole_number_is_out_of_range(client, staff, path, body, field):
    _assert_refused(_json(client, "POST", path, body, staff), 422, field)


@pytest.mark.parametrize("parameter", ["bbox", "limit"])
def test_huge_whole_number_in_a_query_is_refused(client, parameter):
    value = f"{HUGE},42.8,74.6,42.9" if parameter == "bbox" else str(HUGE)
    _assert_refused(client.get("/api/layers", query_string={parameter: value}), 400, parameter)


@pytest.mark.parametrize("field", ["lat", "lon"])
def test_boolean_coordinate_is_not_a_number(client, field):
    body = _assert_refused(client.post("/api/reports", json={**REPORT, field: True}), 422, field)

    assert body["error"] == f"{field} must be a number"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


#: Every endpoint that reads a JSON body, with the method it takes.
JSON_ENDPOINTS = [
    ("POST", "/api/reports"),
    ("DELETE", "/api/reports/some-report"),
    ("POST", "/api/routes"),
    ("POST", "/api/sessions"),
    ("POST", "/api/moderation/events/some-event/approve"),
    ("POST", "/api/moderation/events/some-event/merge"),
]


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_deeply_nested_body_is_refused(client, staff, method, path):
    body = _assert_refused(_json(client, method, path, _nested(2_000), staff), 400, None)

    assert body["error"] == "the body is nested too deeply"


def test_deeply_nested_plan_export_is_refused(app, client):
    csrf = sign_in(client, app, "planner")

    response = client.post("/plan/gpx", data={"kind": "routes", "plan": _nested(2_000), "csrf_token": csrf})

    assert response.status_code == 422
    assert "plan is nested too deeply" in response.get_data(as_text=True)


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_json_sent_as_another_content_type_is_415(client, staff, method, path):
    response = client.open(path, method=method, data=json.dumps(REPORT), content_type="text/plain", headers=staff)

    body = _assert_refused(response, 415, None)
    assert "application/json" in body["error"]


@pytest.mark.parametrize("text", ["\ud800", "a\u0000b", "\udfff tail"])
def test_details_that_no_database_can_hold_are_refused(app, client, text):
    body = _assert_refused(_json(client, "POST", "/api/reports", {**REPORT, "details": text}), 400, "details")

    assert "NUL" in body["error"]
    assert stored_counts(app) == (0, 0)


@pytest.mark.parametrize("text", ["a\x01b", "bell\x07", "\x1b[31m", "c1\x85"])
def test_details_with_control_characters_are_refused(app, client, text):
    _assert_refused(client.post("/api/reports", json={**REPORT, "details": text}), 422, "details")
    assert stored_counts(app) == (0, 0)


def test_details_with_line_breaks_and_tabs_are_kept(app, client):
    assert client.post("/api/reports", json={**REPORT, "details": "two\nlines\tand a tab\r\n"}).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**REPORT, "a\u0000key": 1}, "body"),
        ({**REPORT, "\ud800": 1}, "body"),
        ({**REPORT, "perpetrator": "\ud800"}, "perpetrator"),
    ],
)
def test_unstorable_text_anywhere_in_a_body_is_refused(app, client, body, field):
    _assert_refused(_json(client, "POST", "/api/reports", body), 400, field)
    assert stored_counts(app) == (0, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [({"withdrawal_code": "a\u0000b"}, "withdrawal_code"), ({"withdrawal_code": "\ud800"}, "withdrawal_code")],
)
def test_unstorable_withdrawal_code_is_refused(client, body, field):
    _assert_refused(_json(client, "DELETE", "/api/reports/some-report", body), 400, field)


def test_unstorable_moderation_argument_is_refused(client, staff):
    response = _json(client, "POST", "/api/moderation/events/some-event/merge", {"other": "a\u0000b"}, staff)

    _assert_refused(response, 400, "other")


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/api/layers", {"category": "raid\x00"}, "category"),
        ("/api/heat", {"at": "2026-06-15T00:00:00\x00"}, "at"),
        ("/ogc/collections/checkpoint/items", {"datetime": "\x00"}, "datetime"),
        ("/ogc/collections", {"lang": "ru\x00"}, "lang"),
    ],
)
def test_nul_in_a_query_is_refused(client, path, query, field):
    _assert_refused(client.get(path, query_string=query), 400, field)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/reports/a%00b"),
        ("GET", "/ogc/collections/checkpoint/items/a%00b"),
        ("GET", "/api/moderation/events/a%00b"),
    ],
)
def test_nul_in_the_path_is_refused(client, staff, method, path):
    headers = {**staff, "X-Withdrawal-Code": "x"} if path.startswith("/api/") else {}

    _assert_refused(client.open(path, method=method, headers=headers), 400, "path")


def test_nul_in_a_form_is_refused(app, client):
    response = client.post("/report", data={**REPORT, "details": "a\x00b"})

    assert response.status_code == 400
    assert stored_counts(app) == (0, 0)


@pytest.mark.parametrize("name", ["line\nbreak", "bell\x07", "nul\x00"])
def test_token_name_with_control_characters_is_refused(app, client, name):
    csrf = sign_in(client, app, "peer")

    response = client.post("/account/tokens", data={"name": name, "role": "peer", "csrf_token": csrf})

    assert response.status_code in (400, 422)
    assert "name" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/reports", {"POST"}),
        ("GET", "/api/reports/some-report", {"DELETE"}),
        ("POST", "/api/layers", {"GET"}),
        ("POST", "/ogc/collections", {"GET"}),
        ("DELETE", "/api/routes", {"POST"}),
    ],
)
def test_method_not_allowed_names_the_allowed_ones(client, method, path, allowed):
    response = client.open(path, method=method)

    assert response.status_code == 405
    assert response.is_json
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize(
    ("path", "parameter"),
    [("/api/layers", "at"), ("/api/layers", "since"), ("/api/heat", "at"), ("/api/layers", "bbox")],
)
def test_empty_query_parameter_is_the_same_as_none(client, path, parameter):
    plain, empty = client.get(path), client.get(path, query_string={parameter: ""})

    assert empty.status_code == 200
    assert empty.get_json() == plain.get_json()


def test_empty_ogc_datetime_is_refused(client):
    _assert_refused(client.get("/ogc/collections/checkpoint/items", query_string={"datetime": ""}), 400, "datetime")


@pytest.mark.parametrize(
    ("query", "field"), [("from=0001-01", "from"), ("to=9999-12", "to"), ("compare_from=0001-01", "compare_from")]
)
@pytest.mark.parametrize("path", ["/advocacy/exports/areas.csv", "/advocacy/charts/month-category.svg"])
def test_advocacy_month_out_of_range_is_refused(app, client, path, query, field):
    sign_in(client, app, "advocate")

    response = client.get(f"{path}?{query}", headers={"Accept": "application/json"})

    _assert_refused(response, 422, field)
