"""The advocates' folium map: published aggregates, Gi* hot and cold spots, districts, public events.

The same map serves the page (Leaflet from ``static/``) and the offline HTML export, where every
script, style sheet and image is inlined so that the file works from a USB stick with no
network. There are no base tiles offline: the service area's outline and the districts orient.

District names are whatever the imported file held: every layer that shows text on hover is made
by :func:`_tooltip_layer`, which shows it as text.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import folium
from markupsafe import escape

from mapsvc.config import PROJECT_ROOT
from mapsvc.core.heat import cell_polygon
from mapsvc.core.hotspots import HotspotResult
from mapsvc.services.advocacy.evidence import Evidence, area_totals
from mapsvc.services.advocacy.exports import OUTSIDE

LEAFLET = PROJECT_ROOT / "static" / "vendor" / "leaflet-1.9.4"
HOT, COLD = "#b2182b", "#2166ac"
SHADES = ("#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")


def _shade(value: int, highest: int) -> str:
    if highest <= 0:
        return SHADES[0]
    return SHADES[min(len(SHADES) - 1, (value * len(SHADES) - 1) // highest)]


def _as_text(properties: dict[str, Any]) -> dict[str, Any]:
    """Return ``properties`` with every string HTML-escaped, so that ``innerHTML`` shows it as text."""
    return {key: str(escape(value)) if isinstance(value, str) else value for key, value in properties.items()}


def _tooltip_layer(
    features: list[dict[str, Any]], fields: list[str], style: Callable[[Any], dict[str, Any]], labels: bool = True
) -> folium.GeoJson:
    """Return a GeoJSON layer whose tooltip shows the ``fields`` of each feature as text.

    Every layer with a tooltip is made here, whatever its properties hold. folium writes the
    features into the page's script as JSON whose ``<``, ``>``, ``&`` and ``'`` are Unicode
    escapes, so no value ends the script or leaves its string; its ``GeoJsonTooltip`` then sets
    the values with ``innerHTML``, so every string is HTML-escaped first: a district named
    ``<img onerror=...>`` is read, not run. folium's text tooltip (``tooltip="..."``) is never
    used: it puts the text unescaped into a JavaScript template literal, where a backtick or
    ``${...}`` runs as code under the page's CSP nonce.
    """
    shown = [{**feature, "properties": _as_text(feature["properties"])} for feature in features]
    return folium.GeoJson(
        {"type": "FeatureCollection", "features": shown},
        style_function=style,
        tooltip=folium.GeoJsonTooltip(fields=fields, labels=labels),
    )


def _areas_layer(evidence: Evidence) -> folium.FeatureGroup:
    group = folium.FeatureGroup(name="Published counts")
    sums = {area: sum(per.values()) for area, per in area_totals(evidence).items()}
    highest = max(sums.values(), default=0)
    geometries = {d.name: d.geometry for d in evidence.districts}
    features = []
    for area, n in sums.items():
        if evidence.question.group == "cell":
            geometry = {"type": "Polygon", "coordinates": [list(cell_polygon(area))]}
        elif area in geometries:
            geometry = geometries[area].__geo_interface__
        else:
            continue  # events outside every district have no polygon to draw
        props = {"area": area or OUTSIDE, "events": n, "fill": _shade(n, highest)}
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    if features:
        _tooltip_layer(
            features,
            ["area", "events"],
            lambda f: {"fillColor": f["properties"]["fill"], "color": "#555", "weight": 1, "fillOpacity": 0.7},
        ).add_to(group)
    return group


def _hotspot_layer(result: HotspotResult) -> folium.FeatureGroup:
    group = folium.FeatureGroup(name="Hot and cold spots (Gi*, FDR)")
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [list(cell_polygon(c.cell))]},
            "properties": {"cell": c.cell, "kind": c.kind, "z": round(c.z, 2), "p": round(c.p, 4), "events": c.events},
        }
        for c in result.cells
        if c.kind
    ]
    if features:
        _tooltip_layer(
            features,
            ["kind", "z", "p", "events"],
            lambda f: {"color": HOT if f["properties"]["kind"] == "hot" else COLD, "weight": 3, "fillOpacity": 0.15},
        ).add_to(group)
    return group


def build(evidence: Evidence, result: HotspotResult, js: str, css: str) -> folium.Map:
    """Return the map of the evidence, with Leaflet loaded from ``js`` and ``css``."""
    min_lon, min_lat, max_lon, max_lat = evidence.settings.area.bounds
    m = folium.Map(location=[(min_lat + max_lat) / 2, (min_lon + max_lon) / 2], zoom_start=11, tiles=None)
    m.default_js = [("leaflet", js)]
    m.default_css = [("leaflet_css", css)]
    folium.GeoJson(
        evidence.settings.area.geometry.__geo_interface__,
        name="Service area",
        style_function=lambda f: {"color": "#333", "weight": 2, "fill": False},
    ).add_to(m)
    if evidence.districts:
        outlines = folium.FeatureGroup(name="Districts")
        features = [
            {"type": "Feature", "geometry": d.geometry.__geo_interface__, "properties": {"name": d.name}}
            for d in evidence.districts
        ]
        _tooltip_layer(
            features, ["name"], lambda f: {"color": "#777", "weight": 1, "dashArray": "4", "fill": False}, labels=False
        ).add_to(outlines)
        outlines.add_to(m)
    _areas_layer(evidence).add_to(m)
    _hotspot_layer(result).add_to(m)
    if evidence.events:
        points = folium.FeatureGroup(name="Public events", show=False)
        for e in evidence.events:
            folium.CircleMarker([e.lat, e.lon], radius=3, weight=1, color="#222", fill_opacity=0.6).add_to(points)
        points.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    m.fit_bounds([[min_lat, min_lon], [max_lat, max_lon]])
    return m


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def inlined_leaflet_css() -> str:
    """Return Leaflet's style sheet with its images as data URIs."""
    css = (LEAFLET / "leaflet.css").read_text()

    def image(match: re.Match[str]) -> str:
        path = LEAFLET / match.group(1)
        return f"url({_data_uri(path)})" if path.exists() else "none"

    return re.sub(r"url\((images/[^)]+)\)", image, css)


def legend(evidence: Evidence, result: HotspotResult) -> str:
    """Return the offline map's legend: the question, the colours and the method in brief."""
    q, mins = evidence.question, evidence.min_counts
    lines = [
        f"<b>mapsvc, {escape(evidence.period_label())}</b>",
        f"Categories: {escape(', '.join(sorted(q.selection.categories)))}",
        f"Perpetrator types: {escape(', '.join(sorted(q.selection.perpetrators)))}",
        f'<span style="color:{HOT}">&#9632;</span> hot spot, <span style="color:{COLD}">&#9632;</span> cold spot:'
        f" Getis-Ord Gi*, H3 resolution {result.resolution}, {result.permutations} permutations,"
        f" two-sided, Benjamini-Hochberg FDR {result.alpha}",
        "Shaded cells: published counts of fuzzed events. A category x perpetrator type x cell x month"
        f" is shown only with at least {min(mins.values())} events; every figure is a sum of such units.",
    ]
    style = (
        "position:absolute;bottom:10px;left:10px;z-index:1000;background:#fff;padding:6px 8px;"
        "max-width:28em;font:12px/1.35 sans-serif;border:1px solid #777"
    )
    return f'<div class="mapsvc-legend" style="{style}">' + "<br>".join(lines) + "</div>"


def offline_html(evidence: Evidence, result: HotspotResult, title: str) -> bytes:
    """Return a standalone HTML page of the map with every asset inlined (no network needed)."""
    m = build(evidence, result, "leaflet.js", "leaflet.css")
    cast(folium.Figure, m.get_root()).html.add_child(folium.Element(legend(evidence, result)))  # the map's page
    html = m.get_root().render()
    script = (LEAFLET / "leaflet.js").read_text().replace("</script", "<\\/script")
    html = html.replace('<script src="leaflet.js"></script>', f"<script>{script}</script>")
    html = html.replace('<link rel="stylesheet" href="leaflet.css"/>', f"<style>{inlined_leaflet_css()}</style>")
    html = html.replace("<head>", f"<head><title>{escape(title)}</title>", 1)
    if re.search(r"<(script|link)[^>]*(src|href)=", html):
        raise RuntimeError("the offline map still refers to an outside asset")
    return html.encode()
