"""The planner's page (``/plan``) and its exports: the route as GPX and as a printable route sheet.

The exports are form posts of the plan the page shows (with the CSRF token): the server plans
again and answers with a file or a page, so the stops never appear in an address or a log.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from mapsvc.core.directions import Step, steps
from mapsvc.core.errors import InvalidInput
from mapsvc.core.gpx import Track, Waypoint, to_gpx
from mapsvc.core.roles import Capability
from mapsvc.core.routing import Route
from mapsvc.core.session_plan import MAX_STOPS
from mapsvc.services.planning import Prepared, parse_request, prepare, two_routes, two_sessions
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.roads import stored_modes
from mapsvc.web.auth.identity import current_identity
from mapsvc.web.basemap import build_map, figure_of, folium_header
from mapsvc.web.hooks import inputs
from mapsvc.web.hooks.delivery import csp_nonce
from mapsvc.web.mapconfig import page_config, symbol
from mapsvc.web.planner.turns import PLANNER_STRINGS, describe

bp = Blueprint("planner", __name__)


@bp.get("/plan")
def page() -> str:
    """Show the planner: a map to pick stops on, the danger layers, both routes and their figures."""
    s = settings()
    rs = s.routes
    with get_store().reader() as session:
        networks = stored_modes(session)
    attribution = s.tiles.attribution
    m = build_map(s.area.bounds, bool(s.tiles.url), attribution)
    root = figure_of(m)
    root.render()
    config = page_config(s)
    config["planner"] = {
        "modes": [n.mode for n in networks],
        "alpha": rs.alpha,
        "alpha_max": rs.alpha_max,
        "weights": {name: rs.weights.get(name, 0.0) for name in s.policies},
        "max_stops": MAX_STOPS,
        "attribution": attribution or "© OpenStreetMap contributors",
        "urls": {"routes": url_for("routing.routes"), "sessions": url_for("routing.sessions")},
        "strings": {k: str(v) for k, v in PLANNER_STRINGS.items()},
    }
    return render_template(
        "planner.html",
        map_header=folium_header(root.header.render(), csp_nonce()),
        map_body=root.html.render(),
        map_script=root.script.render(),
        map_name=m.get_name(),
        map_config=config,
        categories=list(s.policies),
        weights=config["planner"]["weights"],
        networks=networks,
        symbol=symbol,
    )


def _posted_plan() -> tuple[str, Prepared]:
    """Return the kind and the prepared plan of an export form (fields ``kind`` and ``plan``, JSON)."""
    kind = request.form.get("kind", "")
    if kind not in {"routes", "sessions"}:
        raise InvalidInput(_("%(field)s must be one of: %(options)s", field="kind", options="routes, sessions"), "kind")
    data = inputs.loads(request.form.get("plan", ""), "plan")
    return kind, prepare(parse_request(data, kind), current_identity().can(Capability.SEE_SINGLE_EVENTS))


def _plan_routes(kind: str, prepared: Prepared) -> tuple[list[Route], list[Route], list[int]]:
    """Return the safest legs, the shortest legs and the order of the stops."""
    if kind == "routes":
        shortest, safest = two_routes(prepared)
        return [safest], [shortest], []
    short_plan, safe_plan = two_sessions(prepared)
    return list(safe_plan.legs), list(short_plan.legs), list(safe_plan.order)


def _waypoints(prepared: Prepared, order: list[int]) -> list[Waypoint]:
    points = prepared.request.points
    made = [Waypoint(_("Start"), *points[0])]
    made += [Waypoint(_("Stop %(n)s", n=k + 1), *points[1 + i]) for k, i in enumerate(order)]
    return [*made, Waypoint(_("End"), *points[-1])]


@bp.post("/plan/gpx")
def gpx() -> Response:
    """Answer the planned route as a GPX 1.1 file: the safest route, the shortest, and the stops in order."""
    kind, prepared = _posted_plan()
    safest, shortest, order = _plan_routes(kind, prepared)
    network = prepared.network
    document = to_gpx(
        _("Outreach route"),
        [
            Track(_("Safest route"), [leg.coordinates(network) for leg in safest]),
            Track(_("Shortest route"), [leg.coordinates(network) for leg in shortest]),
        ],
        _waypoints(prepared, order),
        "OpenStreetMap contributors",
    )
    response = Response(document, mimetype="application/gpx+xml")
    response.headers["Content-Disposition"] = 'attachment; filename="route.gpx"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _summary(legs: list[Route], speed: float) -> dict[str, Any]:
    return {
        "length_m": sum(r.length_m for r in legs),
        "minutes": round(sum(r.length_m for r in legs) / speed / 60),
        "in_danger_m": sum(r.in_danger_m for r in legs),
        "peak_risk": max(r.peak_risk for r in legs),
    }


@bp.post("/plan/sheet")
def sheet() -> Response:
    """Show a printable route sheet: the figures of both routes and the safest route's turn list."""
    kind, prepared = _posted_plan()
    safest, shortest, order = _plan_routes(kind, prepared)
    speed = settings().routes.speed_m_s(prepared.request.mode)
    stops = _waypoints(prepared, order)
    legs: list[tuple[str, str, list[tuple[Step, str]]]] = [
        (stops[i].name, stops[i + 1].name, [(s, describe(s)) for s in steps(prepared.network, leg)])
        for i, leg in enumerate(safest)
    ]
    html = render_template(
        "plan_sheet.html",
        prepared=prepared,
        when=prepared.request.at.astimezone(settings().timezone),
        safest=_summary(safest, speed),
        shortest=_summary(shortest, speed),
        legs=legs,
        attribution=settings().tiles.attribution or "© OpenStreetMap contributors",
    )
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    return response
