"""The advocates' pages: hotspots, charts, tables, exports and a printable report.

Every page and file is built from the published count atoms (``mapsvc.core.counts``) of the
question in the query string; see ``mapsvc.services.advocacy.evidence`` for how it is parsed.
"""

from __future__ import annotations

from typing import Any, BinaryIO, cast

from flask import Blueprint, Response, render_template, request, url_for
from flask_babel import gettext as _

from mapsvc.core.charts import FORMATS
from mapsvc.core.districts import DistrictFileError
from mapsvc.core.errors import InvalidInput, NotFound
from mapsvc.core.policy import PERPETRATORS
from mapsvc.services.advocacy.charts import KINDS, chart
from mapsvc.services.advocacy.evidence import (
    Evidence,
    area_table,
    atom_resolution,
    gather,
    hotspots,
    parse_question,
    today,
)
from mapsvc.services.advocacy.exports import DATA_FORMATS, DATA_KINDS, data_export
from mapsvc.services.advocacy.hotspot_map import build, offline_html
from mapsvc.services.boundaries import read_districts
from mapsvc.services.imports.mapping import MappingError, pairs
from mapsvc.services.imports.run import ImportFailed, ImportOptions, run_import
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.advocacy import load_districts, replace_districts
from mapsvc.store.audit import record_action
from mapsvc.web.auth.identity import current_identity
from mapsvc.web.basemap import figure_of, folium_header
from mapsvc.web.hooks.delivery import csp_nonce

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


# -- Data: the districts and past documentation, uploaded from the browser ------------------------


def _data_page(status: int = 200, keep_form: bool = True, **outcome: Any) -> tuple[str, int]:
    """Render the data page, with the outcome of an upload if there was one.

    Each form shows again what was sent with it (but the file), unless ``keep_form`` is off: after
    a stored import, the documentation form starts afresh with "trial run" ticked, so that sending
    it again does not import the same file twice by a slip.
    """
    sent = request.form if keep_form else {}
    with get_store().reader() as session:
        districts = [d.name for d in load_districts(session)]
    page = render_template(
        "advocacy/data.html",
        districts=districts,
        categories=list(settings().policies),
        perpetrators=PERPETRATORS,
        max_mb=settings().http.upload_max_bytes // (1024 * 1024),
        districts_form=sent if request.endpoint == "advocacy.data_districts" else {},
        form=sent if request.endpoint == "advocacy.data_reports" else {},
        **outcome,
    )
    return page, status


def _upload() -> BinaryIO:
    """Return the uploaded file's bytes (held in memory, see ``mapsvc.web.advocacy.uploads``)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput(_("choose a file to upload"), "file")
    return cast(BinaryIO, upload.stream)  # a BytesIO: see mapsvc.web.advocacy.uploads


def _lines(field: str) -> tuple[str, ...]:
    """Return the non-empty lines of a text box of ``KEY=VALUE`` lines."""
    return tuple(line for line in request.form.get(field, "").splitlines() if line.strip())


@bp.get("/data")
def data() -> tuple[str, int]:
    """Show the forms that import districts and past documentation."""
    return _data_page()


@bp.post("/data/districts")
def data_districts() -> tuple[str, int]:
    """Replace the districts by those of an uploaded GeoJSON or GeoPackage file."""
    try:
        stream = _upload()
        districts = read_districts(stream, request.form.get("name_field") or "name", request.form.get("layer") or None)
    except InvalidInput as error:
        return _data_page(422, districts_error=error.message)
    except DistrictFileError as error:
        return _data_page(422, districts_error=str(error))
    now = settings().now()
    with get_store().writing() as session:
        replace_districts(session, districts, now.replace(minute=0, second=0, microsecond=0))
        record_action(
            session, current_identity().actor, "districts_imported", now, detail=f"{len(districts)} districts"
        )
    return _data_page(districts_done=len(districts))


@bp.post("/data/reports")
def data_reports() -> tuple[str, int]:
    """Import past documentation (CSV or an Ushahidi export): check it all, store every row or none."""
    dry_run = request.form.get("dry_run") == "on"
    try:
        stream = _upload()
        overrides: dict[str, Any] = {
            "columns": pairs(_lines("columns"), "columns"),
            "categories": pairs(_lines("categories"), "category values"),
            "perpetrators": pairs(_lines("perpetrators"), "perpetrator values"),
        }
        if request.form.get("timezone"):
            overrides["timezone"] = request.form["timezone"]
        if request.form.get("time_format"):
            overrides["time_format"] = request.form["time_format"]
        layout = request.form.get("format") or None
        options = ImportOptions(
            layout, overrides, request.form.get("delimiter") or ",", dry_run, "pending" in request.form
        )
        result = run_import(stream, options, settings(), get_store())
    except InvalidInput as error:
        return _data_page(422, import_error=error.message)
    except MappingError as error:
        return _data_page(422, import_error=str(error))
    except ImportFailed as failure:
        return _data_page(422, import_error=failure.problem, failed=failure.result, dry_run=dry_run)
    if result.stored:
        with get_store().writing() as session:
            detail = f"{result.imported} reports, {result.held} held"
            record_action(session, current_identity().actor, "reports_imported", settings().now(), detail=detail)
    return _data_page(keep_form=dry_run, imported=result, dry_run=dry_run)
