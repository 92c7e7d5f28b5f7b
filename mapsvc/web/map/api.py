"""The JSON API: categories, report intake and withdrawal, layers and heat."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import h3
import orjson
from flask import Blueprint, Response, request
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from mapsvc.core.decay import decay_factor
from mapsvc.core.errors import InvalidInput, NotFound
from mapsvc.core.events import features
from mapsvc.core.geodesy import degrees_of_latitude
from mapsvc.core.heat import aggregate, allowed_resolutions, cell_polygon
from mapsvc.core.moments import iso, rounded_down
from mapsvc.core.policy import CategoryPolicy
from mapsvc.core.roles import Capability
from mapsvc.services import parse
from mapsvc.settings import Settings, settings
from mapsvc.store import get_store
from mapsvc.store.events import LayerQuery, layer_events, oldest_readable, withdraw_report
from mapsvc.store.heat import HeatQuery, read_atoms
from mapsvc.web.auth.identity import current_identity
from mapsvc.web.hooks import inputs
from mapsvc.web.map.receiving import take
from mapsvc.web.mapconfig import categories_body
from mapsvc.web.openapi import openapi_document
from mapsvc.web.readcache import Answer, forget_answers, read_cache
from mapsvc.web.responses import encode, json_bytes_response, json_response

bp = Blueprint("api", __name__, url_prefix="/api")


def _answer(
    key: tuple[Any, ...], build: Callable[[Session], Any], shared: bool = True, stand_in: tuple[Any, ...] | None = None
) -> Answer:
    """Return the encoded answer to a read, from the read cache while it is young enough (READ_STALE_S).

    ``build`` gets a reading session, opened only when the answer is computed. ``shared``: a
    public answer, which the workers may share. ``stand_in``: the same read's key one rounding
    of "now" earlier (:meth:`ReadCache.answer`).
    """

    def encoded() -> bytes:
        with get_store().reader() as session:
            return encode(build(session))

    cache = read_cache()
    return Answer.of(encoded()) if cache is None else cache.answer(key, encoded, shared, stand_in)


def _earlier(key: tuple[Any, ...], at: datetime) -> tuple[Any, ...] | None:
    """Return ``key`` with ``at`` one rounding earlier, for a read of "now"; None for a read of a moment asked for."""
    quantum_s = settings().read_cache.quantum_s
    if request.args.get("at") or quantum_s <= 0:
        return None
    return tuple(at - timedelta(seconds=quantum_s) if part == at else part for part in key)


def answer_response(answer: Answer) -> Response:
    """Return a cacheable JSON response of ``answer``: its tag, 304 when unchanged, gzip made once."""
    response = Response(answer.body, mimetype="application/json")
    response.set_etag(answer.etag)
    response.cache_control.no_cache = True
    response.make_conditional(request)
    response.gzipped = answer.gzipped  # type: ignore[attr-defined]  # read by delivery.compress
    return response


@bp.get("/categories")
def categories() -> Response:
    """List the categories with the policy a client needs (fuzz radius, decay, markers)."""
    return json_response(categories_body(settings()), cache=True)


@bp.post("/reports")
def create_report() -> Response:
    """Take a report: check it, fuzz it, store it; answer with the withdrawal code.

    With an ``Idempotency-Key`` the store knows, the report was stored before: the answer is the
    first one's, and nothing is stored again.
    """
    key = parse.idempotency_key(request.headers.get("Idempotency-Key"))
    receipt = take(inputs.json_object(), settings(), get_store(), key)[0]
    # Only what the reporter made: whether the report joined an event, and which, depends on
    # events the reporter may not see (a held one, a single attack, one inside its delay).
    body = {"id": receipt.report_id, "withdrawal_code": receipt.withdrawal_code}
    response = json_response(body, 201)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("/reports/<report_id>")
def delete_report(report_id: str) -> Response:
    """Withdraw a report with its code (JSON body or ``X-Withdrawal-Code`` header)."""
    data = inputs.json_object(optional=True)
    code = request.headers.get("X-Withdrawal-Code") or data.get("withdrawal_code")
    if not isinstance(code, str) or not code:
        raise InvalidInput(_("withdrawal_code is required"), "withdrawal_code", status=400)
    s = settings()
    with get_store().writing() as session:
        withdrawn = withdraw_report(session, report_id, code, s.policies)
    if not withdrawn:
        raise NotFound(_("no report with that id and withdrawal code"))
    forget_answers()
    return Response(status=204)


def _moment(s: Settings) -> datetime:
    """Return the ``at`` parameter, checked against the clock and the retained history.

    Any moment is rounded down as "now" is (``READ_CACHE_S``): moments a few seconds apart draw
    the same map, and share one cached answer instead of each costing a query and a cache entry.
    """
    now = s.now()
    at = now if not request.args.get("at") else parse.moment(request.args["at"], "at")
    if at > now + s.clock_skew:
        raise InvalidInput(_("at must not lie in the future"), "at", status=400)
    if at < oldest_readable(now, s.retention, s.policies.values(), s.threshold):
        raise InvalidInput(_("at is older than the history this service keeps"), "at", status=400)
    return rounded_down(min(at, now), s.read_cache.quantum_s)


def _since(at: datetime, s: Settings) -> datetime | None:
    """Return the ``since`` parameter: list the events of [since, at], faded ones too.

    Raised to the next start of a time bucket that any category can have: the same events, and
    one cached answer for every ``since`` between two such starts.
    """
    if not request.args.get("since"):
        return None
    since = parse.moment(request.args["since"], "since")
    if since >= at or at - since > timedelta(days=31):
        raise InvalidInput(_("since must lie before at, and at most 31 days before it"), "since", status=400)
    step = math.gcd(*(p.bucket_s for p in s.policies.values()))
    seconds = math.ceil(since.timestamp())
    return datetime.fromtimestamp(seconds + (-seconds) % step, UTC)


def _threshold_since(at: datetime, since: datetime, policies: list[CategoryPolicy], threshold: float) -> float:
    """Return a weight threshold low enough that no event of [since, at] is left out.

    ``since``, raised to the next start of a time bucket, may lie after ``at``: the factor is then above 1.
    """
    age_s = (at - since).total_seconds()
    lowest = min((decay_factor(age_s, p.half_life_s) for p in policies), default=threshold)
    return min(threshold, lowest * 0.999)


@bp.get("/layers")
def layers() -> Response:
    """Return the visible events in a bbox at a moment as a GeoJSON FeatureCollection."""
    s = settings()
    with inputs.query_parameters():
        at = _moment(s)
        bbox = parse.bbox(request.args.get("bbox"), s.area.bounds)
        limit = parse.integer(request.args.get("limit"), "limit", s.layer_limit_default, 1, s.layer_limit_max)
        wanted = parse.categories(request.args.get("category"), s.policies)
        since = _since(at, s)
    # Trusted peers and staff also see single events that the public sees only as heat: such an
    # answer is theirs alone, never stored by a shared cache nor tagged for another's revalidation.
    singles = current_identity().can(Capability.SEE_SINGLE_EVENTS)
    key = ("layers", singles, at, bbox, limit, tuple(p.name for p in wanted), since)
    body = _answer(
        key,
        lambda session: _layers_body(session, s, at, bbox, limit, wanted, since, singles),
        not singles,
        _earlier(key, at),
    )
    if singles:
        response = json_bytes_response(body.body)
        response.headers["Cache-Control"] = "private, no-store"
    else:
        response = answer_response(body)
    response.vary.update(("Cookie", "Authorization"))
    return response


def _layers_body(
    session: Session,
    s: Settings,
    at: datetime,
    bbox: tuple[float, float, float, float],
    limit: int,
    wanted: list[CategoryPolicy],
    since: datetime | None,
    singles: bool = False,
) -> dict[str, Any]:
    """Return the FeatureCollection of the visible events (``since``: of [since, at], faded too).

    ``singles``: also the events of categories the public sees only as heat.
    """
    shown = [p for p in wanted if p.public_markers or singles]
    threshold = s.threshold if since is None else _threshold_since(at, since, shown, s.threshold)
    events, matched = layer_events(session, LayerQuery(at, bbox, shown, threshold, limit))
    if since is not None:
        events = [e for e in events if e.event.bucket_start >= since]
        matched = len(events)
    return {
        "type": "FeatureCollection",
        "at": iso(at),
        "numberMatched": matched,
        "numberReturned": len(events),
        "heatOnly": [p.name for p in wanted if p not in shown],
        "features": features(events),
    }


@bp.get("/heat")
def heat() -> Response:
    """Return decayed heat on H3 cells in a bbox at a moment, small cells suppressed."""
    s = settings()
    allowed = allowed_resolutions(s.heat_resolution)
    with inputs.query_parameters():
        at = _moment(s)
        bbox = parse.bbox(request.args.get("bbox"), s.area.bounds)
        resolution = parse.integer(
            request.args.get("resolution"), "resolution", s.heat_resolution, allowed[0], allowed[-1]
        )
        wanted = parse.categories(request.args.get("category"), s.policies)
    key = ("heat", at, bbox, resolution, tuple(p.name for p in wanted))
    body = _answer(
        key, lambda session: _heat_body(session, s, at, bbox, resolution, wanted), stand_in=_earlier(key, at)
    )
    return answer_response(body)


@lru_cache(maxsize=65536)
def _cell_geometry(cell: str) -> orjson.Fragment:
    """Return the cell's GeoJSON polygon, encoded once: every heat answer repeats the same cells.

    Building and encoding the rings afresh was a third of the time of a heat answer of a
    city's 400 cells; the fragment goes into the answer as it is (see :func:`encode`).
    """
    return orjson.Fragment(orjson.dumps({"type": "Polygon", "coordinates": [cell_polygon(cell)]}))


def _heat_body(
    session: Session,
    s: Settings,
    at: datetime,
    bbox: tuple[float, float, float, float],
    resolution: int,
    wanted: list[CategoryPolicy],
) -> dict[str, Any]:
    """Return the FeatureCollection of the published heat cells in view at ``resolution``."""
    # Two edges: atoms of a cell at the view's edge lie within them. Conservative in latitude; the same
    # degrees are taken east-west, where they span fewer metres.
    margin = degrees_of_latitude(2 * h3.average_hexagon_edge_length(resolution, unit="m"))
    atoms = read_atoms(session, HeatQuery(at, bbox, wanted, s.threshold, margin))
    cells = aggregate(atoms, resolution, {p.name: p.min_count_public for p in wanted})
    hexagons = [
        {
            "type": "Feature",
            "id": c.cell,
            "geometry": _cell_geometry(c.cell),
            "properties": {"intensity": round(c.intensity, 3), "events": c.events},
        }
        for c in cells
    ]
    return {"type": "FeatureCollection", "at": iso(at), "resolution": resolution, "features": hexagons}


@bp.get("/health")
def health() -> Response:
    """Say whether the database answers: 200, or 503 naming the problem (for load balancers)."""
    get_store().check()
    response = json_response({"database": "ok"})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/openapi.json")
def openapi() -> Response:
    """Serve the OpenAPI description of this API."""
    return json_response(openapi_document(settings()), cache=True)
