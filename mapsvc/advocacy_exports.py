"""Exports for advocates: aggregated CSV, GeoJSON and GeoPackage, and the offline HTML map.

Aggregates are sums of published count atoms (``mapsvc.core.counts``). Events are exactly the
public layers' single points (fuzzed, bucketed; no category published only as heat).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
from shapely.geometry import Point, Polygon, mapping

from mapsvc.advocacy import Evidence, area_table, area_totals
from mapsvc.core.heat import cell_polygon

DATA_KINDS = ("areas", "events")
DATA_FORMATS = ("csv", "geojson", "gpkg")
OUTSIDE = "(outside the districts)"


def csv_bytes(evidence: Evidence) -> bytes:
    """Return the long table: area type, area, month, category, events."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["area_type", "area", "month", "category", "events"])
    for area, month, category, n in area_table(evidence):
        writer.writerow([evidence.question.group, area or OUTSIDE, month, category, n])
    return out.getvalue().encode()


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
            "id": e.id,
            "category": e.category,
            "perpetrator": e.perpetrator,
            "bucket_start": e.bucket_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
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
        out = io.StringIO()
        frame.assign(lon=frame.geometry.x, lat=frame.geometry.y).drop(columns="geometry").to_csv(out, index=False)
        return out.getvalue().encode()
    if fmt == "geojson":
        return geojson_bytes(frame)
    return gpkg_bytes(frame, f"mapsvc_{kind}")
