"""The advocates' pages: hotspots, charts, tables, exports and a printable report.

Every page and file is built from the published count atoms (``mapsvc.core.counts``) of the
question in the query string; see ``mapsvc.advocacy`` for how it is parsed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request, url_for
from flask_babel import gettext as _

from mapsvc.advocacy import Evidence, area_table, atom_resolution, gather, hotspots, parse_question, today
from mapsvc.advocacy_charts import KINDS, chart
from mapsvc.advocacy_exports import DATA_FORMATS, DATA_KINDS, data_export
from mapsvc.advocacy_map import build, offline_html
from mapsvc.core.charts import FORMATS
from mapsvc.core.policy import PERPETRATORS
from mapsvc.errors import NotFound
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.web.delivery import csp_nonce
from mapsvc.web.mapview import figure_of
from mapsvc.web.pages import folium_header

bp = Blueprint("advocacy", __name__, url_prefix="/advocacy")

MEDIA = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "csv": "text/csv",
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "html": "text/html",
}


def _values() -> dict[str, str]:
    """Return the query string, repeated fields (checkboxes) joined by commas."""
    return {key: ",".join(request.args.getlist(key)) for key in request.args}


def _evidence(with_events: bool = False) -> Evidence:
    s = settings()
    return gather(get_store(), parse_question(_values(), s), s, with_events)


def _file(data: bytes, fmt: str, name: str, inline: bool = False) -> Response:
    response = Response(data, mimetype=MEDIA[fmt])
    response.headers["Content-Disposition"] = f'{"inline" if inline else "attachment"}; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _context(evidence: Evidence) -> dict[str, Any]:
    result = hotspots(evidence)
    js = url_for("static", filename="vendor/leaflet-1.9.4/leaflet.js")
    css = url_for("static", filename="vendor/leaflet-1.9.4/leaflet.css")
    m = build(evidence, result, js, css)
    root = figure_of(m)
    root.render()
    params = evidence.question.as_params()
    return {
        "evidence": evidence,
        "question": evidence.question,
        "params": params,
        "result": result,
        "table": area_table(evidence),
        "total": sum(a.events for a in evidence.atoms),
        "atom_resolution": atom_resolution(evidence.settings),
        "min_counts": evidence.min_counts,
        "map_header": folium_header(root.header.render(), csp_nonce()),
        "map_body": root.html.render(),
        "map_script": root.script.render(),
        "chart_kinds": KINDS,
        "categories": list(evidence.settings.policies),
        "perpetrators": PERPETRATORS,
        "generated": today(evidence.settings),
    }


@bp.get("/")
def index() -> str:
    """Show the form, the hotspot map, the tables, the charts and the export links."""
    return render_template("advocacy/index.html", **_context(_evidence()))


@bp.get("/report")
def report() -> str:
    """Show the printable report: map, charts, tables, method and date range."""
    return render_template("advocacy/report.html", **_context(_evidence()))


@bp.get("/charts/<kind>.<fmt>")
def chart_file(kind: str, fmt: str) -> Response:
    """Return one chart as PNG or SVG."""
    if kind not in KINDS or fmt not in FORMATS:
        raise NotFound(_("no such chart"), "kind")
    return _file(chart(_evidence(), kind, fmt), fmt, f"mapsvc-{kind}.{fmt}", inline=True)


@bp.get("/exports/<kind>.<fmt>")
def export(kind: str, fmt: str) -> Response:
    """Return an export: areas or events as CSV, GeoJSON or GeoPackage, or the offline map."""
    if kind == "map" and fmt == "html":
        evidence = _evidence(with_events=True)
        data = offline_html(evidence, hotspots(evidence), f"mapsvc {evidence.period_label()}")
        return _file(data, "html", "mapsvc-map.html")
    if kind not in DATA_KINDS or fmt not in DATA_FORMATS:
        raise NotFound(_("no such export"), "kind")
    evidence = _evidence(with_events=kind == "events")
    sel = evidence.question.selection
    return _file(data_export(evidence, kind, fmt), fmt, f"mapsvc-{kind}-{sel.first}-{sel.last}.{fmt}")
