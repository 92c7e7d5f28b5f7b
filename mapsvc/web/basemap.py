"""The folium map of the pages: the base map and its tiles, every asset served from ``static/``.

The events and the heat are drawn by the page's own script (``static/js/map.js``) from the
JSON API, so that the layers refresh while the page stays open; folium builds the map itself.
"""

from __future__ import annotations

import re
from typing import cast

import folium
from flask import url_for

from mapsvc.settings import settings


def _local_assets(m: folium.Map) -> None:
    """Point folium at the vendored Leaflet and drop the CDN extras the page does not use."""
    m.default_js = [("leaflet", url_for("static", filename="vendor/leaflet-1.9.4/leaflet.js"))]
    m.default_css = [("leaflet_css", url_for("static", filename="vendor/leaflet-1.9.4/leaflet.css"))]


def figure_of(m: folium.Map) -> folium.Figure:
    """Return the page that holds ``m``: the branca ``Figure`` with its header, body and script parts.

    A ``folium.Map`` puts itself in a new ``Figure`` when it is made, but branca types ``get_root()``
    as returning any ``Element``, which has no ``header``, ``html`` or ``script``.
    """
    return cast(folium.Figure, m.get_root())


def build_map(bounds: tuple[float, float, float, float], tiles: bool = False, attribution: str = "") -> folium.Map:
    """Return a folium map of the service area, with tiles through this service's own proxy.

    Parameters
    ----------
    bounds : tuple of float
        The service area as (min_lon, min_lat, max_lon, max_lat), in degrees.
    tiles : bool
        Whether to show tiles from ``/tiles/{z}/{x}/{y}.png``; without them the map has a plain background.
    attribution : str
        The tiles' attribution, shown on the map.

    """
    min_lon, min_lat, max_lon, max_lat = bounds
    m = folium.Map(
        location=[(min_lat + max_lat) / 2, (min_lon + max_lon) / 2],
        zoom_start=12,
        tiles=None,
        control_scale=True,
        prefer_canvas=False,
        zoom_control=True,
    )
    _local_assets(m)
    if tiles:
        _add_tiles(m, attribution)
    m.fit_bounds([[min_lat, min_lon], [max_lat, max_lon]])
    return m


def _add_tiles(m: folium.Map, attribution: str) -> None:
    """Add the proxy's tiles, and keep the map to the box and zoom levels the proxy serves.

    Leaflet asks only for tiles overlapping the layer's ``bounds`` at the layer's zoom levels,
    and the map cannot be moved out of ``maxBounds`` nor zoomed past the levels: so a person
    never sees a refused (broken) tile, only the plain background beyond the box at low zoom.
    """
    view = settings().tiles.view
    west, south, east, north = view.box
    box = [[south, west], [north, east]]
    template = url_for("tiles.tile", z="0", x="0", y="0").replace("/0/0/0.png", "/{z}/{x}/{y}.png")
    folium.TileLayer(
        tiles=template,
        attr=attribution,
        name="base",
        min_zoom=view.min_zoom,
        max_zoom=view.max_zoom,
        max_native_zoom=view.max_zoom,
        bounds=box,
    ).add_to(m)
    m.options.update(min_zoom=view.min_zoom, max_zoom=view.max_zoom, max_bounds=box, max_bounds_viscosity=1.0)


def folium_header(html: str, nonce: str) -> str:
    """Give folium's inline blocks the page's CSP nonce; drop its zoom-blocking viewport and charset.

    The page's own viewport lets people zoom, as screen magnifier users need.
    """
    html = re.sub(r"<meta[^>]*(viewport|content-type)[^>]*>", "", html, flags=re.DOTALL)
    return re.sub(r"<(style|script)>", rf'<\1 nonce="{nonce}">', html)
