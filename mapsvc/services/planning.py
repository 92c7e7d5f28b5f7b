"""Plan requests: parse them (every failure names its field), gather the danger, call the router.

Shared by the JSON API (:mod:`mapsvc.web.planner.api`) and the planner page's exports
(:mod:`mapsvc.web.planner.page`). Stops are where outreach workers will be: they are used for the
answer and forgotten, never stored or logged.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _

from mapsvc.core.danger import REACH, DangerEvent, StreetRisk, street_risk
from mapsvc.core.errors import Conflict, InvalidInput
from mapsvc.core.geodesy import widened_box
from mapsvc.core.moments import rounded_down
from mapsvc.core.routing import Route, route_between
from mapsvc.core.session_plan import MAX_STOPS, SessionPlan, plan_session
from mapsvc.core.streets import StreetNetwork
from mapsvc.services import parse
from mapsvc.services.osm import MODES
from mapsvc.settings import RouteSettings, Settings, settings
from mapsvc.store import get_store
from mapsvc.store.events import LayerQuery, layer_events, oldest_readable
from mapsvc.store.roads import NetworkInfo, load_network

#: Most live events taken into account per plan (the heaviest first).
EVENT_LIMIT = 20_000


@dataclass(frozen=True)
class PlanRequest:
    """A checked request: the points (lon, lat) and the names of the fields they came from."""

    mode: str
    at: datetime
    alpha: float
    weights: Mapping[str, float]
    points: tuple[tuple[float, float], ...]
    fields: tuple[str, ...]


def _point(value: Any, field: str) -> tuple[float, float]:
    if not isinstance(value, dict):
        raise InvalidInput(_("%(field)s must be an object with lat and lon", field=field), field)
    lat = parse.coordinate(value.get("lat"), f"{field}.lat", -90, 90)
    lon = parse.coordinate(value.get("lon"), f"{field}.lon", -180, 180)
    return lon, lat


def _weights(value: Any, s: Settings, rs: RouteSettings) -> dict[str, float]:
    chosen = {name: rs.weights.get(name, 0.0) for name in s.policies}
    if value is None:
        return chosen
    if not isinstance(value, dict) or any(k not in s.policies for k in value):
        options = ", ".join(s.policies)
        raise InvalidInput(_("weights must map categories (%(options)s) to numbers", options=options), "weights")
    for name, weight in value.items():
        chosen[name] = parse.coordinate(weight, f"weights.{name}", 0, 1)
    return chosen


def _at(value: Any, s: Settings, rs: RouteSettings) -> datetime:
    now = s.now()
    if value in (None, ""):
        return rounded_down(now, s.read_cache.quantum_s)
    at = parse.moment(value, "at", s.timezone)
    if at > now + rs.max_ahead:
        hours = round(rs.max_ahead.total_seconds() / 3600)
        raise InvalidInput(_("at must lie at most %(n)s hours ahead", n=hours), "at")
    if at < oldest_readable(now, s.retention, s.policies.values(), s.threshold):
        raise InvalidInput(_("at is older than the history this service keeps"), "at")
    return at


def parse_request(data: Any, kind: str) -> PlanRequest:
    """Return the checked request of ``kind`` ("routes": from, to; "sessions": start, stops, end)."""
    if not isinstance(data, dict):
        raise InvalidInput(_("the body must be a JSON object"), status=400)
    s = settings()
    rs = s.routes
    mode = parse.choice(data.get("mode"), "mode", MODES, default="walk")
    alpha_value = data.get("alpha")
    alpha = rs.alpha if alpha_value is None else parse.coordinate(alpha_value, "alpha", 0, rs.alpha_max)
    if kind == "routes":
        fields: list[str] = ["from", "to"]
        points = [_point(data.get("from"), "from"), _point(data.get("to"), "to")]
    else:
        stops = data.get("stops")
        if not isinstance(stops, list) or not 1 <= len(stops) <= MAX_STOPS:
            raise InvalidInput(_("stops must be a list of 1 to %(n)s points", n=MAX_STOPS), "stops")
        fields = ["start", *(f"stops[{i}]" for i in range(len(stops))), "end"]
        end = data.get("end") if data.get("end") is not None else data.get("start")
        points = [_point(data.get("start"), "start"), *(_point(p, f"stops[{i}]") for i, p in enumerate(stops))]
        points.append(_point(end, "end"))
    return PlanRequest(
        mode, _at(data.get("at"), s, rs), alpha, _weights(data.get("weights"), s, rs), tuple(points), tuple(fields)
    )


@dataclass(frozen=True)
class Prepared:
    """A request's network, danger and snapped points (node indices)."""

    request: PlanRequest
    info: NetworkInfo
    network: StreetNetwork
    risk: StreetRisk
    events: int
    nodes: tuple[int, ...]
    snap_m: tuple[float, ...]


_RISKS: OrderedDict[tuple[Any, ...], tuple[StreetRisk, int]] = OrderedDict()
_RISKS_KEPT = 16


def _danger(network: StreetNetwork, info: NetworkInfo, request: PlanRequest, singles: bool) -> tuple[StreetRisk, int]:
    """Return the risk along every street at the request's moment, and how many events made it.

    Kept for the same store version, network, moment and weights: re-planning with moved stops
    reuses it. ``singles``: the requester may see single events (else only the categories with
    public markers count).
    """
    s = settings()
    rs = s.routes
    wanted = [p for p in s.policies.values() if request.weights.get(p.name, 0) > 0 and (p.public_markers or singles)]
    store = get_store()
    with store.reader() as session:
        version = store.version(session)
        key = (
            store.url,
            version,
            info.id,
            info.imported_at,
            request.at,
            tuple(sorted(request.weights.items())),
            singles,
        )
        if key in _RISKS:
            _RISKS.move_to_end(key)
            return _RISKS[key]
        # Every event the danger feels (within REACH fuzz radii of a street): conservative degrees
        # hold that distance on the ellipsoid, and so on the danger's own mean sphere.
        reach_m = REACH * max((p.fuzz_radius_m for p in wanted), default=0.0)
        bbox = widened_box(network.bounds, reach_m)
        found = (
            layer_events(session, LayerQuery(request.at, bbox, wanted, s.threshold, EVENT_LIMIT))[0] if wanted else []
        )
    events = []
    for shown in found:
        e = shown.event
        events.append(DangerEvent(e.lon, e.lat, e.category, shown.weight, s.policies[e.category].fuzz_radius_m))
    made = (street_risk(network, events, request.weights, s.level, rs.threshold), len(events))
    _RISKS[key] = made
    while len(_RISKS) > _RISKS_KEPT:
        _RISKS.popitem(last=False)
    return made


def prepare(request: PlanRequest, singles: bool) -> Prepared:
    """Load the network, compute the danger and snap the points; refuse points far from any street.

    ``singles``: the requester may see single events, which then weigh in the danger.
    """
    store = get_store()
    with store.reader() as session:
        loaded = load_network(session, store.url, request.mode)
    if loaded is None:
        raise Conflict(
            _("no %(mode)s street network is imported yet: run `mapsvc roads import`", mode=request.mode), "mode"
        )
    info, network = loaded
    limit = settings().routes.max_snap_m
    snaps = [network.snap(lon, lat) for lon, lat in request.points]
    for snap, field in zip(snaps, request.fields, strict=True):
        if snap.distance_m > limit:
            raise InvalidInput(
                _("%(field)s lies more than %(n)s m from any street", field=field, n=round(limit)), field
            )
    risk, events = _danger(network, info, request, singles)
    return Prepared(
        request, info, network, risk, events, tuple(s.node for s in snaps), tuple(s.distance_m for s in snaps)
    )


def two_routes(prepared: Prepared) -> tuple[Route, Route]:
    """Return the shortest and the safest route between the request's two points."""
    source, target = prepared.nodes
    shortest = route_between(prepared.network, prepared.risk, source, target, 0.0)
    safest = route_between(prepared.network, prepared.risk, source, target, prepared.request.alpha)
    return shortest, safest


def two_sessions(prepared: Prepared) -> tuple[SessionPlan, SessionPlan]:
    """Return the shortest and the safest session plan through the request's stops."""
    start, *stops, end = prepared.nodes
    shortest = plan_session(prepared.network, prepared.risk, start, stops, end, 0.0)
    safest = plan_session(prepared.network, prepared.risk, start, stops, end, prepared.request.alpha)
    return shortest, safest
