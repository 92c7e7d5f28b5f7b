"""The folium map of the public layers and heat, with every asset served from ``static/``."""

from __future__ import annotations

from collections.abc import Iterable

import folium
from flask import url_for

from mapsvc.core.heat import HeatCell, cell_polygon
from mapsvc.store.events import LayerEvent

#: Marker colours by category; the category is also written in each tooltip, never colour alone.
CATEGORY_COLOURS = {
    "checkpoint": "#1f4e9c",
    "patrol": "#3a7dc9",
    "raid": "#b2182b",
    "detention": "#7b3294",
    "extortion": "#e08214",
    "attack": "#542788",
    "robbery": "#8c510a",
    "other": "#4d4d4d",
}


def _local_assets(m: folium.Map) -> None:
    """Point folium at the vendored Leaflet and drop the CDN extras the page does not use."""
    m.default_js = [("leaflet", url_for("static", filename="vendor/leaflet-1.9.4/leaflet.js"))]
    m.default_css = [("leaflet_css", url_for("static", filename="vendor/leaflet-1.9.4/leaflet.css"))]


def _events_geojson(events: Iterable[LayerEvent]) -> dict:  # type: ignore[type-arg]
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [e.lon, e.lat]},
                "properties": {
                    "category": e.category,
                    "weight": round(e.weight, 2),
                    "corroborations": e.corroborations,
                    "colour": CATEGORY_COLOURS.get(e.category, "#4d4d4d"),
                },
            }
            for e in events
        ],
    }


def _heat_geojson(cells: Iterable[HeatCell]) -> dict:  # type: ignore[type-arg]
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [cell_polygon(c.cell)]},
                "properties": {"intensity": round(c.intensity, 3), "events": c.events},
            }
            for c in cells
        ],
    }


def build_map(bounds: tuple[float, float, float, float], events: list[LayerEvent], cells: list[HeatCell]) -> folium.Map:
    """Return a folium map of the service area with the heat cells and the event markers."""
    min_lon, min_lat, max_lon, max_lat = bounds
    m = folium.Map(
        location=[(min_lat + max_lat) / 2, (min_lon + max_lon) / 2],
        zoom_start=12,
        tiles=None,
        control_scale=True,
        prefer_canvas=True,
    )
    _local_assets(m)
    m.fit_bounds([[min_lat, min_lon], [max_lat, max_lon]])
    peak = max((c.intensity for c in cells), default=1.0) or 1.0
    # folium's tooltips refuse a layer without features, which an empty map has.
    folium.GeoJson(
        _heat_geojson(cells),
        name="heat",
        style_function=lambda f: {
            "fillColor": "#d7301f",
            "color": "#d7301f",
            "weight": 0.5,
            "fillOpacity": 0.15 + 0.55 * min(f["properties"]["intensity"] / peak, 1.0),
        },
        tooltip=folium.GeoJsonTooltip(["events", "intensity"]) if cells else None,
    ).add_to(m)
    folium.GeoJson(
        _events_geojson(events),
        name="events",
        marker=folium.CircleMarker(radius=7, weight=2),
        style_function=lambda f: {
            "color": f["properties"]["colour"],
            "fillColor": f["properties"]["colour"],
            "fillOpacity": 0.25 + 0.65 * f["properties"]["weight"],
            "opacity": 0.4 + 0.6 * f["properties"]["weight"],
        },
        tooltip=folium.GeoJsonTooltip(["category", "corroborations", "weight"]) if events else None,
    ).add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    return m
