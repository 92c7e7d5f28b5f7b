"""The OpenAPI 3.0 definition of the OGC API – Features endpoints (conformance class oas30).

OGC API – Features Part 1 asks for OpenAPI 3.0, so this is a document of its own, apart from
the 3.1 document of ``/api``. Its server is the landing page; its paths are relative to it.
"""

from __future__ import annotations

from typing import Any

from mapsvc.core.policy import PERPETRATORS
from mapsvc.settings import Settings

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


_F = _param("f", "query", "answer format (default: by the Accept header)", {"type": "string", "enum": ["json", "html"]})
_LANG = _param("lang", "query", "language of the titles: en, ru or ky", {"type": "string"})


def _ok(description: str, schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {
        "description": description,
        "content": {media: {"schema": schema}, "text/html": {"schema": {"type": "string"}}},
    }


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "A query parameter is unknown or invalid", 404: "No such collection or feature"}
    return {
        str(code): {
            "description": text[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}},
        }
        for code in codes
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
                "bbox", "query", "minLon,minLat,maxLon,maxLat (CRS84)", {"type": "array", "items": {"type": "number"}}
            ),
            "style": "form",
            "explode": False,
        },
        _param(
            "datetime",
            "query",
            "an instant or start/end (.. for an open end): events whose time bucket meets it; "
            "without it, the events on the map now",
            {"type": "string"},
        ),
        _param(
            "limit",
            "query",
            "most features in the page",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": settings.layer_limit_max,
                "default": settings.layer_limit_default,
            },
        ),
        _param("offset", "query", "features skipped before the page", {"type": "integer", "minimum": 0, "default": 0}),
        _F,
        _LANG,
    ]
    anything = {"type": "object"}
    return {
        "/": {
            "get": {"summary": "Landing page", "parameters": [_F, _LANG], "responses": {"200": _ok("Links", anything)}}
        },
        "/conformance": {
            "get": {
                "summary": "Conformance classes",
                "parameters": [_F, _LANG],
                "responses": {"200": _ok("The classes", anything)},
            }
        },
        "/api": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.0"}}}},
        "/collections": {
            "get": {
                "summary": "The collections: one per category shown as single events",
                "parameters": [_F, _LANG],
                "responses": {"200": _ok("The collections", anything)},
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
                    **_errors(400, 404),
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
            "description": "The public layers of the danger map: fuzzed points, time buckets, decaying weights.",
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
