"""Pages for people: the map and the plain report form that works without JavaScript."""

from __future__ import annotations

import secrets

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from mapsvc.core.errors import InvalidInput, MapsvcError
from mapsvc.core.policy import PERPETRATORS
from mapsvc.services import parse
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.events import withdraw_report
from mapsvc.web.basemap import build_map, figure_of, folium_header
from mapsvc.web.hooks.delivery import csp_nonce
from mapsvc.web.map.receiving import take
from mapsvc.web.mapconfig import page_config, symbol
from mapsvc.web.readcache import forget_answers

bp = Blueprint("pages", __name__)


@bp.get("/")
def index() -> str:
    """Show the map: folium draws the base map; the page's script draws and refreshes the layers."""
    s = settings()
    m = build_map(s.area.bounds, bool(s.tiles.url), s.tiles.attribution)
    root = figure_of(m)
    root.render()
    return render_template(
        "map.html",
        map_header=folium_header(root.header.render(), csp_nonce()),
        map_body=root.html.render(),
        map_script=root.script.render(),
        map_name=m.get_name(),
        map_config=page_config(s),
        categories=list(s.policies),
        symbol=symbol,
    )


def _form_context(
    values: dict[str, str] | None = None, error: MapsvcError | None = None, key: str | None = None
) -> dict:  # type: ignore[type-arg]
    """Return what the form is rendered with; ``key`` is its report's idempotency key, new unless given."""
    return {
        "categories": list(settings().policies),
        "perpetrators": PERPETRATORS,
        "values": values or {},
        "error": error,
        "key": key or secrets.token_urlsafe(16),
    }


@bp.get("/report")
def report_form() -> Response:
    """Show the plain report form, with a new key for its report.

    Not stored by the browser, so that going back to it fetches a form with a new key (a form
    brought back with the key of a report already sent would be answered with that one's receipt).
    """
    response = Response(render_template("report.html", **_form_context()), mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/report")
def report_submit() -> tuple[str, int]:
    """Take a report from the plain form; the server fuzzes it.

    The form carries a random key made when it was shown: sent twice (a double tap, a reload
    after a lost answer), the report is stored once and both answers show the same receipt; the
    second says that the form was sent before.
    """
    values = {
        k: v
        for k, v in request.form.items()
        if k in {"category", "lat", "lon", "occurred_at", "perpetrator", "details"}
    }
    key = None
    try:
        key = parse.idempotency_key(request.form.get("key") or None, "key")
        receipt, resent = take(values, settings(), get_store(), key)
    except MapsvcError as error:
        return render_template("report.html", **_form_context(values, error, key)), error.status
    policy = settings().policies.get(values.get("category", ""))
    moderated = policy is not None and policy.premoderation
    return render_template("report_done.html", receipt=receipt, moderated=moderated, resent=resent), 201


@bp.post("/report/withdraw")
def report_withdraw() -> tuple[str, int] | Response:
    """Withdraw a report from the plain form with its id and code."""
    report_id = request.form.get("report_id", "").strip()
    code = request.form.get("withdrawal_code", "").strip()
    if not report_id or not code:
        error = InvalidInput(_("report id and withdrawal code are required"), "withdrawal_code")
        return render_template("withdraw.html", error=error), 422
    with get_store().writing() as session:
        withdrawn = withdraw_report(session, report_id, code, settings().policies)
    if withdrawn:
        forget_answers()
    return render_template("withdraw.html", withdrawn=withdrawn, error=None), (200 if withdrawn else 404)


@bp.get("/report/withdraw")
def report_withdraw_form() -> str:
    """Show the withdrawal form."""
    return render_template("withdraw.html", error=None, withdrawn=None)
