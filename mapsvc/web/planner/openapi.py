"""The route planning API's part of the OpenAPI document (assembled in :mod:`mapsvc.web.openapi`)."""

from __future__ import annotations

from typing import Any

from mapsvc.core.session_plan import MAX_STOPS
from mapsvc.services.osm import MODES
from mapsvc.settings import RouteSettings, Settings
from mapsvc.web.openapi_parts import (
    ACCOUNT_ERROR_TEXTS,
    LATITUDE,
    LONGITUDE,
    error_responses,
    json_answer,
    json_content,
    moment,
    ref,
)

_TEXTS = {
    **ACCOUNT_ERROR_TEXTS,
    403: "The role may not plan routes, or the CSRF token is missing or wrong",
    409: "No street network of that mode is imported yet (`mapsvc roads import`)",
    422: "A field failed its checks (for example a point far from any street); the answer names it",
}


def _point(max_snap_m: float) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["lat", "lon"],
        "additionalProperties": False,
        "description": f"a point at most {max_snap_m:g} m from a street of the imported network",
        "properties": {"lat": LATITUDE, "lon": LONGITUDE},
    }


_TIMESTAMP = {"type": "string", "format": "date-time"}


def _options(settings: Settings, rs: RouteSettings) -> dict[str, Any]:
    """Return the request fields that routes and sessions share (null or, for text, empty: the default)."""
    hours = round(rs.max_ahead.total_seconds() / 3600)
    return {
        "mode": {"enum": [*MODES, "", None], "default": "walk"},
        "at": {
            "anyOf": [
                moment(f"Planned start; default now. At most {hours} hours ahead, no older than the history kept"),
                {"const": ""},
                {"type": "null"},
            ]
        },
        "alpha": {
            "type": ["number", "null"],
            "minimum": 0,
            "maximum": rs.alpha_max,
            "default": rs.alpha,
            "description": "cost = length x (1 + alpha x risk); 0 gives the shortest route",
        },
        "weights": {
            "type": ["object", "null"],
            "description": "how strongly to avoid each category, 0 (ignore) to 1; missing ones take the defaults",
            "properties": {name: {"type": "number", "minimum": 0, "maximum": 1} for name in settings.policies},
            "additionalProperties": False,
        },
    }


def _route(with_order: bool = False) -> dict[str, Any]:
    figures = {
        "length_m": {"type": "number"},
        "duration_s": {"type": "integer", "description": "at the mode's configured speed"},
        "in_danger_m": {"type": "number", "description": "metres where the risk reaches the danger threshold"},
        "peak_risk": {"type": "number", "description": "highest risk passed"},
        "cost": {"type": "number", "description": "length x (1 + alpha x risk), summed"},
    }
    if with_order:
        return {
            "type": "object",
            "required": ["order", "legs", *figures],
            "properties": {
                "order": {"type": "array", "items": {"type": "integer"}, "description": "indices into stops"},
                "legs": {"type": "array", "items": ref("Route")},
                **figures,
            },
        }
    return {
        "type": "object",
        "required": ["geometry", "steps", *figures],
        "properties": {
            "geometry": {
                "type": "object",
                "required": ["type", "coordinates"],
                "properties": {"type": {"const": "LineString"}, "coordinates": {"type": "array"}},
            },
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["turn", "street", "highway", "distance_m"],
                    "properties": {
                        "turn": {
                            "enum": [
                                "depart",
                                "straight",
                                "slight_left",
                                "slight_right",
                                "left",
                                "right",
                                "sharp_left",
                                "sharp_right",
                                "u_turn",
                            ]
                        },
                        "street": {"type": ["string", "null"], "description": "OSM name; null when unnamed"},
                        "highway": {"type": "string"},
                        "distance_m": {"type": "number"},
                    },
                },
            },
            **figures,
        },
    }


def _answer(kind: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["at", "mode", "alpha", "weights", "danger", "network", "attribution", "shortest", "safest"],
        "properties": {
            "at": {**_TIMESTAMP, "pattern": "Z$"},
            "mode": {"enum": ["walk", "drive"]},
            "alpha": {"type": "number"},
            "weights": {"type": "object", "additionalProperties": {"type": "number"}},
            "danger": {
                "type": "object",
                "properties": {"events": {"type": "integer"}, "threshold": {"type": "number"}},
            },
            "snapped_m": {"type": "object", "additionalProperties": {"type": "number"}},
            "network": {"type": "object", "properties": {"source": {"type": "string"}, "imported_at": _TIMESTAMP}},
            "attribution": {"type": "string"},
            "detour_m": {"type": "number"},
            "shortest": ref(kind),
            "safest": ref(kind),
        },
    }


def schemas(settings: Settings) -> dict[str, Any]:
    """Return the component schemas of the route planning API."""
    rs = settings.routes
    options = _options(settings, rs)
    point = _point(rs.max_snap_m)
    return {
        "RouteRequest": {
            "type": "object",
            "required": ["from", "to"],
            "additionalProperties": False,
            "properties": {"from": point, "to": point, **options},
        },
        "SessionRequest": {
            "type": "object",
            "required": ["start", "stops"],
            "additionalProperties": False,
            "properties": {
                "start": point,
                "stops": {"type": "array", "items": point, "minItems": 1, "maxItems": MAX_STOPS},
                "end": {"anyOf": [point, {"type": "null"}], "description": "default: back to the start"},
                **options,
            },
        },
        "Route": _route(),
        "SessionPlan": _route(with_order=True),
        "Routes": _answer("Route"),
        "Sessions": _answer("SessionPlan"),
    }


def _operation(summary: str, request: str, answer: str, description: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "description": description,
            "tags": ["routes"],
            "security": [{"bearerAuth": []}],
            "requestBody": {"required": True, "content": json_content(ref(request))},
            "responses": {
                "200": json_answer("Both plans, private to the requester (no-store)", answer),
                **error_responses(400, 403, 409, 413, 415, 422, texts=_TEXTS),
            },
        }
    }


def paths(settings: Settings) -> dict[str, Any]:
    """Return the paths of the route planning API (planners and admins)."""
    return {
        "/api/routes": _operation(
            "Shortest and safest route between two points",
            "RouteRequest",
            "Routes",
            "Risk along each street comes from the live events at the planned start, each spread over its "
            "category's fuzz radius and weighted by the planner's category weights.",
        ),
        "/api/sessions": _operation(
            "A session through up to 15 stops: the visiting order and the route, safest and shortest",
            "SessionRequest",
            "Sessions",
            "The order is exact (Held-Karp) for the cost length x (1 + alpha x risk).",
        ),
    }
