"""The OpenAPI 3.0 definition of the OGC API – Features endpoints (conformance class oas30).

OGC API – Features Part 1 asks for OpenAPI 3.0, so this is a document of its own, apart from
the 3.1 document of ``/api``. Its server is the landing page; its paths are relative to it.
"""

from __future__ import annotations

from typing import Any

from mapsvc.core.policy import PERPETRATORS
from mapsvc.settings import Settings
from mapsvc.web.ogc.params import OFFSET_MAX
from mapsvc.web.openapi_parts import NO_NUL

OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"

_EXCEPTION = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
}

_LINK = {
    "type": "object",
    "required": ["href", "rel"],
    "properties": {
        "href": {"type": "string"},
        "rel": {"type": "string"},
        "type": {"type": "string"},
        "title": {"type": "string"},
    },
}


def _param(name: str, where: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


_F = {
    **_param(
        "f",
        "query",
        "answer format (absent or empty: by the Accept header)",
        {"type": "string", "enum": ["json", "html"]},
    ),
    "allowEmptyValue": True,
}
_LANG = _param(
    "lang",
    "query",
    "language of the titles: en, ru or ky (anything else: by the Accept-Language header)",
    {"type": "string"},
)

#: One end of a ``datetime`` interval, or an instant: an RFC 3339 date-time (UTC without an offset) or a
#: date (its first moment at a start, its last at an end), written in the years parse.YEARS allows.
_MOMENT = (
    "(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    "(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?"
)
#: ``datetime``: an instant, or an interval whose ends may be open (".." or nothing).
DATETIME_PATTERN = f"^({_MOMENT}|({_MOMENT}|\\.\\.)?/({_MOMENT}|\\.\\.)?)$"


def _ok(description: str, schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {
        "description": description,
        "content": {media: {"schema": schema}, "text/html": {"schema": {"type": "string"}}},
    }


def _errors(*codes: int) -> dict[str, Any]:
    """Return the documented error answers: ``codes``, and those of every operation (400, 429, 503)."""
    text = {
        400: "A query parameter is unknown or invalid; the answer names it",
        404: "No such collection or feature",
        429: "Too many requests from this address; retry after the Retry-After seconds",
        503: "The database is unreachable or busy; retry after the Retry-After seconds",
    }
    return {
        str(code): {
            "description": text[code],
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/exception"}},
                "text/html": {"schema": {"type": "string"}},
            },
        }
        for code in sorted({*codes, 400, 429, 503})
    }


def _feature_schema(categories: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "id", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "string"},
            "geometry": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["Point"]},
                    "coordinates": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                },
            },
            "properties": {
                "type": "object",
                "properties": {
                    "category": {"type": "string", "enum": categories},
                    "perpetrator": {"type": "string", "enum": list(PERPETRATORS)},
                    "bucket_start": {"type": "string", "format": "date-time"},
                    "weight": {"type": "number", "minimum": 0, "maximum": 1},
                    "corroborations": {"type": "integer", "minimum": 1},
                    "trust": {"type": "string", "enum": ["unverified", "corroborated", "verified"]},
                },
            },
        },
    }


def _paths(settings: Settings, categories: list[str]) -> dict[str, Any]:
    collection_id = _param("collectionId", "path", "a category", {"type": "string", "enum": categories}, True)
    items_parameters = [
        collection_id,
        {
            **_param(
                "bbox",
                "query",
                "minLon,minLat,maxLon,maxLat (CRS84), or the same with a height after each corner (ignored): "
                "longitudes from -180 to 180, latitudes from -90 to 90, each minimum smaller than its maximum "
                "(absent or empty: the service area)",
                {
                    "type": "array",
                    "items": {"type": "number", "minimum": -180, "maximum": 180},
                    "minItems": 4,
                    "maxItems": 6,
                },
            ),
            "style": "form",
            "explode": False,
            "allowEmptyValue": True,
        },
        _param(
            "datetime",
            "query",
            "an instant or start/end (.. or nothing for an open end; an end not before the start): events "
            "whose time bucket meets it; without it, the events on the map now",
            {"type": "string", "pattern": DATETIME_PATTERN},
        ),
        {
            **_param(
                "limit",
                "query",
                "most features in the page (empty: the default)",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": settings.layer_limit_max,
                    "default": settings.layer_limit_default,
                },
            ),
            "allowEmptyValue": True,
        },
        {
            **_param(
                "offset",
                "query",
                "features skipped before the page (empty: 0)",
                {"type": "integer", "minimum": 0, "maximum": OFFSET_MAX, "default": 0},
            ),
            "allowEmptyValue": True,
        },
        _F,
        _LANG,
    ]
    anything = {"type": "object"}
    return {
        "/": {
            "get": {
                "summary": "Landing page",
                "parameters": [_F, _LANG],
                "responses": {"200": _ok("Links", anything), **_errors()},
            }
        },
        "/conformance": {
            "get": {
                "summary": "Conformance classes",
                "parameters": [_F, _LANG],
                "responses": {"200": _ok("The classes", anything), **_errors()},
            }
        },
        "/api": {
            "get": {
                "summary": "This document",
                "parameters": [_F, _LANG],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.0",
                        "content": {OPENAPI_MEDIA_TYPE: {"schema": {"type": "object"}}},
                    },
                    **_errors(),
                },
            }
        },
        "/collections": {
            "get": {
                "summary": "The collections: one per category shown as single events",
                "parameters": [_F, _LANG],
                "responses": {"200": _ok("The collections", anything), **_errors()},
            }
        },
        "/collections/{collectionId}": {
            "get": {
                "summary": "One collection",
                "parameters": [collection_id, _F, _LANG],
                "responses": {"200": _ok("The collection", anything), **_errors(404)},
            }
        },
        "/collections/{collectionId}/items": {
            "get": {
                "summary": "A page of the collection's events",
                "parameters": items_parameters,
                "responses": {
                    "200": _ok(
                        "GeoJSON features", {"$ref": "#/components/schemas/featureCollection"}, "application/geo+json"
                    ),
                    **_errors(404),
                },
            }
        },
        "/collections/{collectionId}/items/{featureId}": {
            "get": {
                "summary": "One event",
                "parameters": [
                    collection_id,
                    _param("featureId", "path", "an event id", {"type": "string"}, True),
                    _F,
                    _LANG,
                ],
                "responses": {
                    "200": _ok("A GeoJSON feature", {"$ref": "#/components/schemas/feature"}, "application/geo+json"),
                    **_errors(404),
                },
            }
        },
    }


def ogc_openapi_document(settings: Settings, categories: list[str], server: str) -> dict[str, Any]:
    """Return the OpenAPI 3.0 document of the OGC API for the public categories, served at ``server``."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "mapsvc OGC API - Features",
            "version": "1",
            "description": "The public layers of the danger map: fuzzed points, time buckets, decaying weights. "
            + NO_NUL,
        },
        "servers": [{"url": server.rstrip("/")}],
        "paths": _paths(settings, categories),
        "components": {
            "schemas": {
                "exception": _EXCEPTION,
                "link": _LINK,
                "feature": _feature_schema(categories),
                "featureCollection": {
                    "type": "object",
                    "required": ["type", "features"],
                    "properties": {
                        "type": {"type": "string", "enum": ["FeatureCollection"]},
                        "features": {"type": "array", "items": {"$ref": "#/components/schemas/feature"}},
                        "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
                        "timeStamp": {"type": "string", "format": "date-time"},
                        "numberMatched": {"type": "integer", "minimum": 0},
                        "numberReturned": {"type": "integer", "minimum": 0},
                    },
                },
            }
        },
    }
