"""Exports for advocates: aggregated CSV, GeoJSON and GeoPackage, and the offline HTML map.

Aggregates are sums of published count atoms (``mapsvc.core.counts``). Events are exactly the
public layers' single points (fuzzed, bucketed; no category published only as heat). Every CSV
is written by :func:`csv_table`, which keeps spreadsheets from reading text as a formula.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
from shapely.geometry import Point, Polygon, mapping

from mapsvc.core.heat import cell_polygon
from mapsvc.core.moments import iso
from mapsvc.services.advocacy.evidence import Evidence, area_table, area_totals

DATA_KINDS = ("areas", "events")
DATA_FORMATS = ("csv", "geojson", "gpkg")
OUTSIDE = "(outside the districts)"

#: First characters with which a spreadsheet reads a cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """Return ``value`` as a CSV cell: text that a spreadsheet would take for a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_table(columns: list[str], rows: Iterable[Iterable[object]], exact: Collection[str] = ()) -> bytes:
    """Return a CSV file of ``columns`` and ``rows``: every CSV this package writes is written here.

    Every text cell goes through :func:`csv_cell`, but those of the ``exact`` columns. Some text
    comes from outside: a district's name (the ``area`` cell) is whatever the imported file held,
    and a spreadsheet opening the export would run a name such as ``=HYPERLINK("https://...")``
    or ``@SUM(...)`` as a formula; the leading ``'`` makes it text. The other text cells (area
    type, month, category, perpetrator type, time bucket, trust) are the service's own words,
    which never start so; they go through the same function all the same, so that no column can
    be forgotten. ``exact`` is for the service's own identifiers, drawn from letters, digits,
    ``-`` and ``_`` (no parenthesis, so no function call), which may start with ``-`` and must
    stay as they are to be looked up. Numbers (counts, coordinates, negative ones too) are ints
    and floats, not text, and are written as they are.
    """
    keep = [c in exact for c in columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([csv_cell(c) for c in columns])
    writer.writerows([v if k else csv_cell(v) for v, k in zip(row, keep, strict=True)] for row in rows)
    return out.getvalue().encode()


def csv_bytes(evidence: Evidence) -> bytes:
    """Return the long table: area type, area, month, category, events."""
    rows = (
        (evidence.question.group, area or OUTSIDE, month, category, n)
        for area, month, category, n in area_table(evidence)
    )
    return csv_table(["area_type", "area", "month", "category", "events"], rows)


def _area_geometry(evidence: Evidence, area: str) -> Any:
    if evidence.question.group == "cell":
        return Polygon(cell_polygon(area))
    found = next((d.geometry for d in evidence.districts if d.name == area), None)
    return found


def areas_frame(evidence: Evidence) -> gpd.GeoDataFrame:
    """Return one feature per area with published events: total and one column per category."""
    categories = sorted(evidence.question.selection.categories)
    rows, geometries = [], []
    for area, per_category in area_totals(evidence).items():
        rows.append(
            {
                "area": area or OUTSIDE,
                "area_type": evidence.question.group,
                "period": evidence.period_label(),
                "events": sum(per_category.values()),
                **{c: per_category.get(c, 0) for c in categories},
            }
        )
        geometries.append(_area_geometry(evidence, area))
    columns = ["area", "area_type", "period", "events", *categories]
    return gpd.GeoDataFrame(rows, columns=columns, geometry=geometries, crs=4326)


def events_frame(evidence: Evidence) -> gpd.GeoDataFrame:
    """Return the public events of the selection as points."""
    events = evidence.events or []
    rows = [
        {
            "id": e.public_id,
            "category": e.category,
            "perpetrator": e.perpetrator,
            "bucket_start": iso(e.bucket_start),
            "corroborations": e.corroborations,
            "trust": e.trust,
        }
        for e in events
    ]
    columns = ["id", "category", "perpetrator", "bucket_start", "corroborations", "trust"]
    return gpd.GeoDataFrame(rows, columns=columns, geometry=[Point(e.lon, e.lat) for e in events], crs=4326)


def geojson_bytes(frame: gpd.GeoDataFrame) -> bytes:
    """Return a GeoJSON FeatureCollection (EPSG:4326, coordinates as stored)."""
    features = [
        {"type": "Feature", "geometry": mapping(geometry) if geometry is not None else None, "properties": props}
        for props, geometry in zip(
            frame.drop(columns=frame.geometry.name).to_dict("records"), frame.geometry, strict=True
        )
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False).encode()


def gpkg_bytes(frame: gpd.GeoDataFrame, layer: str) -> bytes:
    """Return a GeoPackage holding ``frame`` as ``layer``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{layer}.gpkg"
        frame.to_file(path, layer=layer, driver="GPKG")
        return path.read_bytes()


def data_export(evidence: Evidence, kind: str, fmt: str) -> bytes:
    """Return the export ``kind`` (areas or events) in ``fmt`` (csv, geojson, gpkg)."""
    if kind == "areas" and fmt == "csv":
        return csv_bytes(evidence)
    frame = areas_frame(evidence) if kind == "areas" else events_frame(evidence)
    if fmt == "csv":
        table = frame.assign(lon=frame.geometry.x, lat=frame.geometry.y).drop(columns="geometry")
        return csv_table(list(table.columns), table.itertuples(index=False, name=None), exact={"id"})
    if fmt == "geojson":
        return geojson_bytes(frame)
    return gpkg_bytes(frame, f"mapsvc_{kind}")
