"""The OpenAPI document: valid 3.1, complete, and true to the real responses."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from mapsvc.services.parse import YEARS
from mapsvc.web.ogc.openapi import DATETIME_PATTERN
from tests.conftest import NOW
from tests.helpers import HOME_CELL, cell_centre, post_device

DOCUMENT_URI = "urn:mapsvc:openapi"
IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def document(client) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    validate(document)


def _flask_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes |= {(path, m.lower()) for m in rule.methods - IGNORED_METHODS}
    return routes


def _documented_routes(document) -> set[tuple[str, str]]:
    http = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {(path, method) for path, item in document["paths"].items() for method in item if method in http}


def test_every_api_route_is_documented(app, document):
    assert _flask_routes(app) - _documented_routes(document) == set()


def test_every_documented_route_exists(app, document):
    assert _documented_routes(document) - _flask_routes(app) == set()


def _validator(document: dict[str, Any], path: str, method: str, status: int) -> Draft202012Validator:
    """Return a validator for the documented JSON body of one response, $refs resolved."""
    content = document["paths"][path][method]["responses"][str(status)]["content"]["application/json"]
    schema = content["schema"]
    registry = Registry().with_resource(DOCUMENT_URI, DRAFT202012.create_resource(document))
    if "$ref" in schema:
        schema = {"$ref": DOCUMENT_URI + schema["$ref"]}
    return Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _assert_documented(document, path: str, method: str, response) -> None:
    assert response.is_json
    errors = list(_validator(document, path, method, response.status_code).iter_errors(response.get_json()))
    assert errors == [], [e.message for e in errors]


def _filled_map(client) -> None:
    """Store enough events for layers with features and a heat cell that is not suppressed."""
    for k in range(3):
        post_device(client, cell_centre(HOME_CELL), occurred_at=NOW - timedelta(hours=k))
    for k in range(3):
        post_device(client, cell_centre(HOME_CELL), category="attack", occurred_at=NOW - timedelta(days=k))


def test_categories_response_is_documented(client, document):
    _assert_documented(document, "/api/categories", "get", client.get("/api/categories"))


REPORTS = {
    "created": {"category": "checkpoint", "lat": 42.8746, "lon": 74.5698},
    "created, all fields": {
        "category": "attack",
        "lat": 42.8746,
        "lon": 74.5698,
        "occurred_at": "2026-06-15T12:00:00Z",
        "perpetrator": "client",
        "details": "near the market",
        "fuzzed_on_device": True,
    },
    "invalid field": {"category": "checkpoint", "lat": 95.0, "lon": 74.5698},
    "unknown field": {"category": "checkpoint", "lat": 42.8746, "lon": 74.5698, "name": "x"},
    "not an object": [1, 2],
    "too large": {"category": "checkpoint", "lat": 42.8746, "lon": 74.5698, "details": "x" * 20_000},
}


@pytest.mark.parametrize("body", list(REPORTS.values()), ids=list(REPORTS))
def test_report_responses_are_documented(client, document, body):
    response = client.post("/api/reports", json=body)

    assert str(response.status_code) in document["paths"]["/api/reports"]["post"]["responses"]
    _assert_documented(document, "/api/reports", "post", response)


def test_report_created_body_matches_the_request_schema(client, document):
    """The documented request schema accepts what the service accepts."""
    body = REPORTS["created, all fields"]
    schema = document["paths"]["/api/reports"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    registry = Registry().with_resource(DOCUMENT_URI, DRAFT202012.create_resource(document))
    Draft202012Validator({"$ref": DOCUMENT_URI + schema["$ref"]}, registry=registry).validate(body)

    assert client.post("/api/reports", json=body).status_code == 201


@pytest.mark.parametrize("params", [{}, {"category": "attack"}, {"limit": 1}, {"at": "2026-06-15T20:00:00Z"}])
def test_layers_responses_are_documented(client, document, params):
    _filled_map(client)

    response = client.get("/api/layers", query_string=params)

    assert response.status_code == 200
    _assert_documented(document, "/api/layers", "get", response)


def test_layers_response_with_features_is_documented(client, document):
    _filled_map(client)

    response = client.get("/api/layers")

    assert response.get_json()["features"]
    _assert_documented(document, "/api/layers", "get", response)


@pytest.mark.parametrize("resolution", [None, 4, 6, 8])
def test_heat_response_with_cells_is_documented(client, document, resolution):
    _filled_map(client)

    response = client.get("/api/heat", query_string={"resolution": resolution} if resolution else {})

    assert response.get_json()["features"]
    _assert_documented(document, "/api/heat", "get", response)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/layers", {"bbox": "1,2,3"}),
        ("/api/layers", {"category": "party"}),
        ("/api/layers", {"limit": "0"}),
        ("/api/heat", {"resolution": "12"}),
        ("/api/heat", {"at": "2099-01-01T00:00:00Z"}),
    ],
)
def test_view_errors_are_documented(client, document, path, params):
    response = client.get(path, query_string=params)

    assert str(response.status_code) in document["paths"][path]["get"]["responses"]
    _assert_documented(document, path, "get", response)


@pytest.mark.parametrize("case", ["unknown", "no code"])
def test_withdrawal_errors_are_documented(client, document, case):
    headers = {"X-Withdrawal-Code": "wrong"} if case == "unknown" else {}

    response = client.delete("/api/reports/nothing-here", headers=headers)

    assert str(response.status_code) in document["paths"]["/api/reports/{report_id}"]["delete"]["responses"]
    _assert_documented(document, "/api/reports/{report_id}", "delete", response)


def test_withdrawal_answer_is_documented(client, document):
    created = client.post("/api/reports", json=REPORTS["created"]).get_json()

    response = client.delete(f"/api/reports/{created['id']}", headers={"X-Withdrawal-Code": created["withdrawal_code"]})

    assert str(response.status_code) in document["paths"]["/api/reports/{report_id}"]["delete"]["responses"]


def test_document_lists_the_configured_categories(app, document):
    assert document["components"]["schemas"]["NewReport"]["properties"]["category"]["enum"] == list(
        app.extensions["mapsvc.settings"].policies
    )


def _request_validator(document, path: str, method: str) -> Draft202012Validator:
    schema = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    registry = Registry().with_resource(DOCUMENT_URI, DRAFT202012.create_resource(document))
    if "$ref" in schema:
        schema = {"$ref": DOCUMENT_URI + schema["$ref"]}
    return Draft202012Validator(schema, registry=registry)


#: Report bodies, and whether intake takes them: the schema must say the same of each.
REPORT_PLACES = {
    "in the area": ({"category": "checkpoint", "lat": 42.8746, "lon": 74.5698}, True),
    "at 0,0": ({"category": "checkpoint", "lat": 0, "lon": 0}, False),
    "on the area's corner": ({"category": "checkpoint", "lat": 42.93, "lon": 74.72}, True),
    "just north, fuzzed by the server": ({"category": "checkpoint", "lat": 42.935, "lon": 74.6}, False),
    "just north, fuzzed on the device": (
        {"category": "checkpoint", "lat": 42.935, "lon": 74.6, "fuzzed_on_device": True},
        True,
    ),
    "past a checkpoint's reach, fuzzed on the device": (
        {"category": "checkpoint", "lat": 42.96, "lon": 74.6, "fuzzed_on_device": True},
        False,
    ),
    "within a raid's reach, fuzzed on the device": (
        {"category": "raid", "lat": 42.96, "lon": 74.6, "fuzzed_on_device": True},
        True,
    ),
    "a control character in details": (
        {"category": "checkpoint", "lat": 42.8746, "lon": 74.5698, "details": "a\x07b"},
        False,
    ),
}


@pytest.mark.parametrize(("body", "taken"), list(REPORT_PLACES.values()), ids=list(REPORT_PLACES))
def test_report_schema_takes_what_intake_takes(client, document, body, taken):
    valid = _request_validator(document, "/api/reports", "post").is_valid(body)

    response = client.post("/api/reports", json=body)

    assert (valid, response.status_code == 201) == (taken, taken), response.get_json()


def test_documented_history_is_what_at_may_reach(app, client, document):
    at = next(p for p in document["paths"]["/api/layers"]["get"]["parameters"] if p["name"] == "at")
    days = int(re.search(r"about (\d+) days", at["schema"]["description"]).group(1))
    s = app.extensions["mapsvc.settings"]

    def status(before_now: timedelta) -> int:
        return client.get("/api/layers", query_string={"at": (s.now() - before_now).isoformat()}).status_code

    assert status(timedelta(days=days)) == 200
    assert status(timedelta(days=days + 1)) == 400


def test_withdrawal_code_is_documented_as_not_empty(client, document):
    header = document["paths"]["/api/reports/{report_id}"]["delete"]["parameters"][1]
    assert header["name"] == "X-Withdrawal-Code" and header["schema"]["minLength"] == 1

    response = client.delete("/api/reports/nothing-here", json={"withdrawal_code": ""})

    assert response.status_code == 400
    assert response.get_json()["field"] == "withdrawal_code"


def test_every_operation_documents_its_limits_and_failures(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"401", "503"} <= codes, (path, method)
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= codes, (path, method)


@pytest.mark.parametrize("year", [1969, 1970, 2026, 2999, 3000])
def test_ogc_datetime_pattern_keeps_to_the_years_read(year):
    matches = re.fullmatch(DATETIME_PATTERN, f"{year}-06-15T10:00:00Z/..") is not None

    assert matches == (YEARS[0] <= year <= YEARS[1])
