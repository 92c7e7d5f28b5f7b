"""The route planning API: ``POST /api/routes`` (two points) and ``POST /api/sessions`` (a session's stops).

Answers are ``private, no-store``: they hold where outreach will go, and the danger they are
built from includes single events that only trusted people see.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from mapsvc.core.directions import steps
from mapsvc.core.moments import iso
from mapsvc.core.roles import Capability
from mapsvc.core.routing import Route
from mapsvc.core.session_plan import SessionPlan
from mapsvc.core.streets import StreetNetwork
from mapsvc.services.planning import Prepared, parse_request, prepare, two_routes, two_sessions
from mapsvc.settings import settings
from mapsvc.web.auth.identity import current_identity
from mapsvc.web.hooks import inputs
from mapsvc.web.responses import json_response

bp = Blueprint("routing", __name__, url_prefix="/api")


def route_body(network: StreetNetwork, route: Route, speed_m_s: float) -> dict[str, Any]:
    """Return a route as the API shows it: GeoJSON line, length, time, exposure and turn list."""
    return {
        "geometry": {
            "type": "LineString",
            "coordinates": [[round(x, 6), round(y, 6)] for x, y in route.coordinates(network)],
        },
        "length_m": round(route.length_m, 1),
        "duration_s": round(route.length_m / speed_m_s),
        "in_danger_m": round(route.in_danger_m, 1),
        "peak_risk": round(route.peak_risk, 3),
        "cost": round(route.cost, 1),
        "steps": [
            {"turn": s.turn, "street": s.name, "highway": s.highway, "distance_m": round(s.distance_m, 1)}
            for s in steps(network, route)
        ],
    }


def plan_body(network: StreetNetwork, plan: SessionPlan, speed_m_s: float) -> dict[str, Any]:
    """Return a session plan: the stops' order, totals, and each leg as a route."""
    whole = plan.route
    return {
        "order": list(plan.order),
        "length_m": round(whole.length_m, 1),
        "duration_s": round(whole.length_m / speed_m_s),
        "in_danger_m": round(whole.in_danger_m, 1),
        "peak_risk": round(whole.peak_risk, 3),
        "cost": round(whole.cost, 1),
        "legs": [route_body(network, leg, speed_m_s) for leg in plan.legs],
    }


def _common(prepared: Prepared) -> dict[str, Any]:
    """Return what every plan answer says about how it was made."""
    req = prepared.request
    return {
        "at": iso(req.at),
        "mode": req.mode,
        "alpha": req.alpha,
        "weights": dict(req.weights),
        "danger": {"events": prepared.events, "threshold": prepared.risk.threshold},
        "snapped_m": {f: round(d, 1) for f, d in zip(req.fields, prepared.snap_m, strict=True)},
        "network": {"source": prepared.info.source, "imported_at": iso(prepared.info.imported_at)},
        "attribution": settings().tiles.attribution or "© OpenStreetMap contributors",
    }


def _private(body: dict[str, Any]) -> Response:
    response = json_response(body)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def routes_body(prepared: Prepared) -> dict[str, Any]:
    """Return the answer to a route request: the shortest and the safest route, and the detour."""
    shortest, safest = two_routes(prepared)
    speed = settings().routes.speed_m_s(prepared.request.mode)
    return {
        **_common(prepared),
        "shortest": route_body(prepared.network, shortest, speed),
        "safest": route_body(prepared.network, safest, speed),
        "detour_m": round(safest.length_m - shortest.length_m, 1),
    }


def sessions_body(prepared: Prepared) -> dict[str, Any]:
    """Return the answer to a session request: the shortest and the safest plan."""
    shortest, safest = two_sessions(prepared)
    speed = settings().routes.speed_m_s(prepared.request.mode)
    return {
        **_common(prepared),
        "shortest": plan_body(prepared.network, shortest, speed),
        "safest": plan_body(prepared.network, safest, speed),
        "detour_m": round(safest.route.length_m - shortest.route.length_m, 1),
    }


@bp.post("/routes")
def routes() -> Response:
    """Return the shortest and the safest route between two points at the planned moment."""
    return _private(
        routes_body(
            prepare(parse_request(inputs.json_body(), "routes"), current_identity().can(Capability.SEE_SINGLE_EVENTS))
        )
    )


@bp.post("/sessions")
def sessions() -> Response:
    """Return the order and route of a session through its stops, safest and shortest."""
    return _private(
        sessions_body(
            prepare(parse_request(inputs.json_body(), "sessions"), current_identity().can(Capability.SEE_SINGLE_EVENTS))
        )
    )
