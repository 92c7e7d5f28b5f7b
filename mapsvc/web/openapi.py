"""The OpenAPI 3.1 description of the JSON API; tests check real responses against it."""

from __future__ import annotations

from typing import Any

from mapsvc.core.policy import PERPETRATORS
from mapsvc.settings import Settings
from mapsvc.web.openapi_accounts import SECURITY, accounts_paths, security_schemes
from mapsvc.web.openapi_moderation import moderation_paths, moderation_schemas
from mapsvc.web.openapi_routing import routing_paths, routing_schemas

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
}

_TIMESTAMP = {"type": "string", "format": "date-time", "pattern": "^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$"}


def _error_responses(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed request",
        404: "Not found",
        413: "Body too large",
        422: "A field failed its checks",
        429: "Too many requests from this address; retry after the Retry-After seconds",
        503: "The database is unreachable or busy; retry after the Retry-After seconds",
    }
    return {
        str(code): {
            "description": text[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


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
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_VIEW_PARAMETERS = [
    _query("bbox", "minLon,minLat,maxLon,maxLat in WGS84 degrees; default the service area", {"type": "string"}),
    _query(
        "at",
        "ISO 8601 moment to show the map as it was, rounded down to the read cache's seconds; default now",
        {"type": "string", "format": "date-time"},
    ),
    _query("category", "comma-separated categories; default all", {"type": "string"}),
]


def _schemas(settings: Settings) -> dict[str, Any]:
    categories = list(settings.policies)
    return {
        "Error": _ERROR,
        "NewReport": {
            "type": "object",
            "required": ["category", "lat", "lon"],
            "additionalProperties": False,
            "properties": {
                "category": {"enum": categories},
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
                "occurred_at": {"type": "string", "format": "date-time", "description": "default now"},
                "perpetrator": {"enum": list(PERPETRATORS), "default": "unknown"},
                "details": {"type": "string", "maxLength": settings.details_max_length},
                "fuzzed_on_device": {
                    "type": "boolean",
                    "default": False,
                    "description": "the point was already fuzzed on the device and is stored as sent",
                },
            },
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
                "features": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type", "id", "geometry", "properties"],
                        "properties": {
                            "type": {"const": "Feature"},
                            "id": {"type": "string"},
                            "geometry": {
                                "type": "object",
                                "required": ["type", "coordinates"],
                                "properties": {
                                    "type": {"const": "Point"},
                                    "coordinates": {
                                        "type": "array",
                                        "items": {"type": "number"},
                                        "minItems": 2,
                                        "maxItems": 2,
                                    },
                                },
                            },
                            "properties": {
                                "type": "object",
                                "required": [
                                    "category",
                                    "perpetrator",
                                    "bucket_start",
                                    "weight",
                                    "corroborations",
                                    "trust",
                                ],
                                "properties": {
                                    "category": {"enum": categories},
                                    "perpetrator": {"enum": list(PERPETRATORS)},
                                    "bucket_start": _TIMESTAMP,
                                    "weight": {"type": "number", "minimum": 0, "maximum": 1},
                                    "corroborations": {"type": "integer", "minimum": 1},
                                    "trust": {"enum": ["unverified", "corroborated", "verified"]},
                                },
                            },
                        },
                    },
                },
            },
        },
        "Heat": {
            "type": "object",
            "required": ["type", "at", "resolution", "features"],
            "properties": {
                "type": {"const": "FeatureCollection"},
                "at": _TIMESTAMP,
                "resolution": {"type": "integer"},
                "features": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type", "id", "geometry", "properties"],
                        "properties": {
                            "type": {"const": "Feature"},
                            "id": {"type": "string", "description": "H3 cell index"},
                            "geometry": {
                                "type": "object",
                                "required": ["type", "coordinates"],
                                "properties": {"type": {"const": "Polygon"}, "coordinates": {"type": "array"}},
                            },
                            "properties": {
                                "type": "object",
                                "required": ["intensity", "events"],
                                "properties": {
                                    "intensity": {"type": "number", "minimum": 0},
                                    "events": {"type": "integer", "minimum": 1},
                                },
                            },
                        },
                    },
                },
            },
        },
    }


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def openapi_document(settings: Settings) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for the configured categories and limits."""
    from mapsvc.core.heat import allowed_resolutions

    resolutions = allowed_resolutions(settings.heat_resolution)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mapsvc",
            "version": "1",
            "description": "Community reports of police raids, checkpoints and attacks as a privacy-safe, "
            "time-decaying danger map. Every location is fuzzed before it is stored.",
        },
        "paths": {
            "/api/categories": {
                "get": {
                    "summary": "Categories and their policies",
                    "responses": {"200": _ok("The policies", "Categories")},
                }
            },
            "/api/reports": {
                "post": {
                    "summary": "Submit a report",
                    "description": _RESEND_TEXT,
                    "parameters": [_IDEMPOTENCY_KEY],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewReport"}}},
                    },
                    "responses": {
                        "201": _ok("Stored, fuzzed; or stored before under this Idempotency-Key", "ReportCreated"),
                        **_error_responses(400, 413, 422),
                    },
                }
            },
            "/api/reports/{report_id}": {
                "delete": {
                    "summary": "Withdraw a report with its withdrawal code",
                    "parameters": [
                        {"name": "report_id", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "X-Withdrawal-Code", "in": "header", "required": False, "schema": {"type": "string"}},
                    ],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "properties": {"withdrawal_code": {"type": "string"}}}
                            }
                        },
                    },
                    "responses": {"204": {"description": "Withdrawn"}, **_error_responses(400, 404)},
                }
            },
            "/api/layers": {
                "get": {
                    "summary": "Visible events in view, with their decay weight",
                    "parameters": [
                        *_VIEW_PARAMETERS,
                        _query(
                            "since",
                            "list the events of [since, at], faded ones too (at most 31 days)",
                            {"type": "string", "format": "date-time"},
                        ),
                        _query(
                            "limit",
                            "most events returned, heaviest first",
                            {"type": "integer", "minimum": 1, "maximum": settings.layer_limit_max},
                        ),
                    ],
                    "responses": {
                        "200": _ok("GeoJSON events", "Layers"),
                        "304": {"description": "Not modified"},
                        **_error_responses(400, 429),
                    },
                }
            },
            "/api/heat": {
                "get": {
                    "summary": "Decayed heat on H3 cells; cells with too few events are left out",
                    "parameters": [
                        *_VIEW_PARAMETERS,
                        _query(
                            "resolution",
                            "H3 resolution",
                            {"type": "integer", "minimum": resolutions[0], "maximum": resolutions[-1]},
                        ),
                    ],
                    "responses": {
                        "200": _ok("GeoJSON cells", "Heat"),
                        "304": {"description": "Not modified"},
                        **_error_responses(400, 429),
                    },
                }
            },
            "/api/health": {
                "get": {
                    "summary": "Whether the database answers (for load balancers and monitoring)",
                    "responses": {
                        "200": {
                            "description": "The database answered",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["database"],
                                        "properties": {"database": {"const": "ok"}},
                                    }
                                }
                            },
                        },
                        **_error_responses(503),
                    },
                }
            },
            "/api/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1 document"}}}
            },
            **accounts_paths(),
            **moderation_paths(settings),
            **routing_paths(),
        },
        "security": SECURITY,
        "components": {
            "securitySchemes": security_schemes(),
            "schemas": {**_schemas(settings), **moderation_schemas(settings), **routing_schemas(settings)},
        },
    }
