"""The map API's part of the OpenAPI document: categories, reports, layers, heat, health, the document itself."""

from __future__ import annotations

from typing import Any

from mapsvc.core.heat import allowed_resolutions
from mapsvc.core.policy import PERPETRATORS
from mapsvc.core.text import FREE_TEXT_PATTERN
from mapsvc.services.intake import DEVICE_NOISE_REACH_RADII, device_reach_m
from mapsvc.settings import Settings
from mapsvc.store.events import oldest_readable
from mapsvc.web.openapi_parts import LATITUDE, LONGITUDE, error_responses, json_answer, json_content, moment, ref

_TIMESTAMP = {"type": "string", "format": "date-time", "pattern": "^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$"}


_RESEND_TEXT = (
    "Send each report with a random `Idempotency-Key` (128 bits, made once for the report) and "
    "send the same key with every try. A try with a key the service has stored a report under "
    "stores nothing: it is answered 201 with the first try's body (the same `id` and "
    "`withdrawal_code`), whatever its body says, after the same fixed answer time as a new "
    "report. Two tries of one key at once store one report. The service keeps only a hash of "
    "the key and the answer sealed with it, until no resend could be accepted any more "
    "(`MAX_REPORT_AGE_DAYS` after the report's time bucket, and a day or two). Retry 5xx, 408 "
    "and 429 answers, and lost connections, with the same key; any other 4xx is final."
)

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "This report's random key, the same on every try; a malformed one is answered 400",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,128}$", "minLength": 16, "maxLength": 128},
}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Return an optional query parameter; an empty value is the same as none (the HTML forms send empty fields)."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "description": description + " (empty: as if absent)",
        "schema": schema,
    }


def _history_days(settings: Settings) -> int:
    """Return how many whole days of history the map can still show (``at`` may go back this far)."""
    now = settings.now()
    return (now - oldest_readable(now, settings.retention, settings.policies.values(), settings.threshold)).days


def _bbox() -> dict[str, Any]:
    return {
        **_query(
            "bbox",
            "minLon,minLat,maxLon,maxLat in WGS84 degrees, each minimum smaller than its maximum; "
            "default the service area",
            {
                "type": "array",
                "prefixItems": [LONGITUDE, LATITUDE, LONGITUDE, LATITUDE],
                "items": False,
                "minItems": 4,
                "maxItems": 4,
            },
        ),
        "style": "form",
        "explode": False,
    }


def _categories(settings: Settings) -> dict[str, Any]:
    return {
        **_query(
            "category",
            "comma-separated categories; default all",
            {"type": "array", "items": {"enum": list(settings.policies)}},
        ),
        "style": "form",
        "explode": False,
    }


def _view_parameters(settings: Settings) -> list[dict[str, Any]]:
    skew = int(settings.clock_skew.total_seconds())
    return [
        _bbox(),
        _query(
            "at",
            "the moment to show the map as it was, rounded down to the read cache's seconds; default now",
            moment(
                f"At most {skew} s ahead of the server's clock, and no older than the history kept "
                f"(about {_history_days(settings)} days)"
            ),
        ),
        _categories(settings),
    ]


def schemas(settings: Settings) -> dict[str, Any]:
    """Return the component schemas of the map API."""
    categories = list(settings.policies)
    return {
        "NewReport": {
            "type": "object",
            "required": ["category", "lat", "lon"],
            "additionalProperties": False,
            "properties": {
                "category": {"enum": categories},
                "lat": LATITUDE,
                "lon": LONGITUDE,
                "occurred_at": {
                    "anyOf": [
                        moment(
                            f"When it happened; default now. At most {int(settings.clock_skew.total_seconds())} s "
                            f"ahead of the server's clock, at most {settings.max_report_age.days} days ago"
                        ),
                        {"const": ""},
                        {"type": "null"},
                    ]
                },
                "perpetrator": {"enum": [*PERPETRATORS, "", None], "default": "unknown"},
                "details": {
                    "type": ["string", "null"],
                    "maxLength": settings.details_max_length,
                    "pattern": FREE_TEXT_PATTERN,
                    "description": "free text, kept only where the service stores details (STORE_DETAILS); no "
                    "control characters but tab and line breaks, no NUL, no lone surrogates",
                },
                "fuzzed_on_device": {
                    "type": ["boolean", "null"],
                    "default": False,
                    "description": "the point was already fuzzed on the device and is stored as sent",
                },
            },
            "description": "null and an empty string are the same as an absent field. The point must lie in the "
            "service area (/api/categories names its bounding box); a point fuzzed on the device may lie "
            f"outside it by up to {DEVICE_NOISE_REACH_RADII} fuzz radii of its category, and is moved inside.",
            "anyOf": _report_places(settings),
            "example": _example_report(settings),
        },
        "ReportCreated": {
            "type": "object",
            "description": "the report's id and withdrawal code only: nothing that depends on events the "
            "reporter may not see (whether the report joined one, which)",
            "required": ["id", "withdrawal_code"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "withdrawal_code": {"type": "string", "description": "shown once; needed to withdraw"},
            },
        },
        "Categories": {
            "type": "object",
            "required": ["privacy_level", "visibility_threshold", "categories", "perpetrators", "service_area"],
            "properties": {
                "privacy_level": {"type": "number"},
                "visibility_threshold": {"type": "number"},
                "perpetrators": {"type": "array", "items": {"enum": list(PERPETRATORS)}},
                "service_area": {
                    "type": "object",
                    "properties": {
                        "bbox": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
                    },
                },
                "categories": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": [
                            "name",
                            "half_life_s",
                            "fuzz_radius_m",
                            "bucket_s",
                            "publication_delay_s",
                            "public_markers",
                            "min_count_public",
                            "min_count_export",
                            "merge_factor",
                            "premoderation",
                            "reuse_factor",
                            "merge_distance_m",
                            "reuse_distance_m",
                            "horizon_s",
                            "epsilon_per_m",
                        ],
                        "properties": {
                            "name": {"enum": categories},
                            "half_life_s": {"type": "number"},
                            "fuzz_radius_m": {"type": "number"},
                            "bucket_s": {"type": "integer"},
                            "publication_delay_s": {"type": "integer"},
                            "public_markers": {"type": "boolean"},
                            "min_count_public": {"type": "integer"},
                            "min_count_export": {"type": "integer"},
                            "merge_factor": {"type": "number"},
                            "premoderation": {
                                "type": "boolean",
                                "description": "anonymous reports wait for a moderator before they appear",
                            },
                            "reuse_factor": {"type": "number"},
                            "merge_distance_m": {"type": "number"},
                            "reuse_distance_m": {
                                "type": "number",
                                "description": "a true point this near a point already published for the "
                                "category is published at that point again (no fresh noise)",
                            },
                            "horizon_s": {"type": "integer"},
                            "epsilon_per_m": {"type": "number"},
                        },
                    },
                },
            },
        },
        "Layers": {
            "type": "object",
            "required": ["type", "at", "numberMatched", "numberReturned", "heatOnly", "features"],
            "properties": {
                "type": {"const": "FeatureCollection"},
                "at": _TIMESTAMP,
                "numberMatched": {"type": "integer", "minimum": 0},
                "numberReturned": {"type": "integer", "minimum": 0},
                "heatOnly": {"type": "array", "items": {"enum": categories}},
                "features": _features(
                    {"type": "string"},
                    _geometry("Point", {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}),
                    {
                        "type": "object",
                        "required": ["category", "perpetrator", "bucket_start", "weight", "corroborations", "trust"],
                        "properties": {
                            "category": {"enum": categories},
                            "perpetrator": {"enum": list(PERPETRATORS)},
                            "bucket_start": _TIMESTAMP,
                            "weight": {"type": "number", "minimum": 0, "maximum": 1},
                            "corroborations": {"type": "integer", "minimum": 1},
                            "trust": {"enum": ["unverified", "corroborated", "verified"]},
                        },
                    },
                ),
            },
        },
        "Heat": {
            "type": "object",
            "required": ["type", "at", "resolution", "features"],
            "properties": {
                "type": {"const": "FeatureCollection"},
                "at": _TIMESTAMP,
                "resolution": {"type": "integer"},
                "features": _features(
                    {"type": "string", "description": "H3 cell index"},
                    _geometry("Polygon", {"type": "array"}),
                    {
                        "type": "object",
                        "required": ["intensity", "events"],
                        "properties": {
                            "intensity": {"type": "number", "minimum": 0},
                            "events": {"type": "integer", "minimum": 1},
                        },
                    },
                ),
            },
        },
    }


def _features(id_: dict[str, Any], geometry: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """Return the schema of a GeoJSON FeatureCollection's ``features``: its id, geometry and properties."""
    return {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["type", "id", "geometry", "properties"],
            "properties": {"type": {"const": "Feature"}, "id": id_, "geometry": geometry, "properties": properties},
        },
    }


def _geometry(kind: str, coordinates: dict[str, Any]) -> dict[str, Any]:
    """Return the schema of a GeoJSON geometry of ``kind``."""
    return {
        "type": "object",
        "required": ["type", "coordinates"],
        "properties": {"type": {"const": kind}, "coordinates": coordinates},
    }


def _example_report(settings: Settings) -> dict[str, Any]:
    """Return a report that a service takes: a point inside its area."""
    point = settings.area.geometry.representative_point()
    return {"category": next(iter(settings.policies)), "lat": round(point.y, 4), "lon": round(point.x, 4)}


def _report_places(settings: Settings) -> list[dict[str, Any]]:
    """Return where a report's point may lie: in the area, or, fuzzed on the device, near it (by category)."""

    def place(west: float, south: float, east: float, north: float) -> dict[str, Any]:
        return {
            "lat": {"type": "number", "minimum": south, "maximum": north},
            "lon": {"type": "number", "minimum": west, "maximum": east},
        }

    places = [
        {
            "properties": {"fuzzed_on_device": {"enum": [False, None]}, **place(*settings.area.bounds)},
            "description": "server-fuzzed: inside the service area (for an area that is not a box, its "
            "bounding box is necessary, not enough)",
        }
    ]
    reaches: dict[float, list[str]] = {}
    for policy in settings.policies.values():
        reaches.setdefault(device_reach_m(policy), []).append(policy.name)
    for reach, names in reaches.items():
        places.append(
            {
                "properties": {
                    "category": {"enum": names},
                    "fuzzed_on_device": {"const": True},
                    **place(*settings.area.widened_bounds(reach)),
                },
                "required": ["fuzzed_on_device"],
                "description": f"fuzzed on the device: within about {reach:g} m of the service area",
            }
        )
    return places


def paths(settings: Settings) -> dict[str, Any]:
    """Return the map API's paths."""
    resolutions = allowed_resolutions(settings.heat_resolution)
    return {
        "/api/categories": {
            "get": {
                "summary": "Categories and their policies",
                "responses": {"200": json_answer("The policies", "Categories"), **error_responses()},
            }
        },
        "/api/reports": {
            "post": {
                "summary": "Submit a report",
                "description": _RESEND_TEXT,
                "parameters": [_IDEMPOTENCY_KEY],
                "requestBody": {"required": True, "content": json_content(ref("NewReport"))},
                "responses": {
                    "201": json_answer("Stored, fuzzed; or stored before under this Idempotency-Key", "ReportCreated"),
                    **error_responses(400, 413, 415, 422, 429),
                },
            }
        },
        "/api/reports/{report_id}": {
            "delete": {
                "summary": "Withdraw a report with its withdrawal code",
                "parameters": [
                    {"name": "report_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "X-Withdrawal-Code",
                        "in": "header",
                        "required": True,
                        "description": "the code the report's answer gave; required unless the body gives it",
                        "schema": {"type": "string", "minLength": 1},
                    },
                ],
                "requestBody": {
                    "required": False,
                    "description": "instead of the header (the header wins when both are sent)",
                    "content": json_content(
                        {
                            "type": ["object", "null"],
                            "properties": {"withdrawal_code": {"type": "string", "minLength": 1}},
                        }
                    ),
                },
                "responses": {
                    "204": {"description": "Withdrawn"},
                    **error_responses(400, 404, 413, 415),
                },
            }
        },
        "/api/layers": {
            "get": {
                "summary": "Visible events in view, with their decay weight",
                "parameters": [
                    *_view_parameters(settings),
                    _query(
                        "since",
                        "list the events of [since, at], faded ones too",
                        moment("Before at, and at most 31 days before it"),
                    ),
                    _query(
                        "limit",
                        f"most events returned, heaviest first; default {settings.layer_limit_default}",
                        {"type": "integer", "minimum": 1, "maximum": settings.layer_limit_max},
                    ),
                ],
                "responses": {
                    "200": json_answer("GeoJSON events", "Layers"),
                    "304": {"description": "Not modified"},
                    **error_responses(400, 429),
                },
            }
        },
        "/api/heat": {
            "get": {
                "summary": "Decayed heat on H3 cells; cells with too few events are left out",
                "parameters": [
                    *_view_parameters(settings),
                    _query(
                        "resolution",
                        f"H3 resolution; default {settings.heat_resolution}",
                        {"type": "integer", "minimum": resolutions[0], "maximum": resolutions[-1]},
                    ),
                ],
                "responses": {
                    "200": json_answer("GeoJSON cells", "Heat"),
                    "304": {"description": "Not modified"},
                    **error_responses(400, 429),
                },
            }
        },
        "/api/health": {
            "get": {
                "summary": "Whether the database answers (for load balancers and monitoring)",
                "responses": {
                    "200": {
                        "description": "The database answered",
                        "content": json_content(
                            {"type": "object", "required": ["database"], "properties": {"database": {"const": "ok"}}}
                        ),
                    },
                    **error_responses(),
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1 document"}, **error_responses()},
            }
        },
    }
