"""The web map's tile grid (Web Mercator, as Leaflet and OpenStreetMap number it) against an area.

Pure functions: which box of longitude and latitude a tile ``z/x/y`` covers, the service area's
box widened by a margin, and whether a tile meets that box, judged as Leaflet judges it (a tile
is asked for when it overlaps the layer's ``bounds``), so that the server never refuses a tile
the map asks for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from mapsvc.core.geodesy import NOMINAL_METRES_PER_DEGREE, Box, widened_box

#: The latitude at which the Web Mercator square ends, in degrees.
MERCATOR_LAT = math.degrees(math.atan(math.sinh(math.pi)))

#: Slack in degrees (about 0.1 mm): rounding in the browser never makes a wanted tile refused.
SLACK_DEG = 1e-9

#: Deepest zoom level a tile provider numbers (a z beyond is not a tile at all).
DEEPEST_ZOOM = 24

#: The tile cache's prune leaves at most this share of its bound (mapsvc.services.tilecache).
LOW_WATER = 0.9

#: A generous size of one overview tile, in bytes (OpenStreetMap's city tiles are mostly 10-40 KB).
OVERVIEW_TILE_BYTES = 64 * 1024


def tile_box(z: int, x: int, y: int) -> Box:
    """Return the (west, south, east, north) degrees that tile ``z/x/y`` covers.

    Parameters
    ----------
    z, x, y : int
        Zoom level, column (from the antimeridian eastwards) and row (from the north).

    """
    n = 2**z
    west, east = x / n * 360.0 - 180.0, (x + 1) / n * 360.0 - 180.0
    north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))
    south = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 1) / n))))
    return west, south, east, north


def widened(bounds: Box, margin_m: float) -> Box:
    """Return ``bounds`` grown by ``margin_m`` metres on every side, kept on the Mercator square.

    Parameters
    ----------
    bounds : tuple of float
        (west, south, east, north) in degrees.
    margin_m : float
        The margin in metres (0 or more), nominal (:data:`~mapsvc.core.geodesy.NOMINAL_METRES_PER_DEGREE`:
        the margin need only be about right, the map page is given this same box); east-west
        degrees are taken at the box's widest latitude.

    """
    if not margin_m >= 0:
        raise ValueError("the margin must be 0 metres or more")
    west, south, east, north = widened_box(bounds, margin_m, NOMINAL_METRES_PER_DEGREE)
    return (west, max(-MERCATOR_LAT, south), east, min(MERCATOR_LAT, north))


def meets(tile: Box, box: Box) -> bool:
    """Return whether a tile's box overlaps ``box`` (touching counts, so nothing Leaflet wants is refused)."""
    west, south, east, north = tile
    left, bottom, right, top = box
    return (
        east >= left - SLACK_DEG
        and west <= right + SLACK_DEG
        and north >= bottom - SLACK_DEG
        and south <= top + SLACK_DEG
    )


def _span(z: int, first: int, last: int, meeting: Callable[[int], bool]) -> range:
    """Return the numbers from about ``first`` to about ``last`` (give or take one) that ``meeting`` admits.

    ``meeting`` admits one run of numbers, so only its ends are looked for.
    """
    n = 2**z
    low = next((i for i in range(max(0, first - 1), min(n, last + 2)) if meeting(i)), None)
    if low is None:
        return range(0)
    high = next(i for i in range(min(n - 1, last + 1), low - 1, -1) if meeting(i))
    return range(low, high + 1)


def tiles_meeting(z: int, box: Box) -> tuple[range, range]:
    """Return the columns and the rows of the zoom-``z`` tiles that meet ``box`` (as :func:`meets` judges).

    Parameters
    ----------
    z : int
        Zoom level.
    box : tuple of float
        (west, south, east, north) in degrees.

    """
    west, south, east, north = box
    n = 2**z

    def column(lon: float) -> int:
        return int((lon + 180.0) / 360.0 * n)

    def row(lat: float) -> int:
        lat = max(-MERCATOR_LAT, min(MERCATOR_LAT, lat))
        return int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)

    # Columns and rows are judged apart: the other axis is given the whole square.
    columns = _span(z, column(west), column(east), lambda x: meets(tile_box(z, x, 0), (west, -90.0, east, 90.0)))
    rows = _span(z, row(north), row(south), lambda y: meets(tile_box(z, 0, y), (-180.0, south, 180.0, north)))
    return columns, rows


def tile_count(z: int, box: Box) -> int:
    """Return how many tiles of zoom ``z`` meet ``box``."""
    columns, rows = tiles_meeting(z, box)
    return len(columns) * len(rows)


def overview_depth(box: Box, min_zoom: int, max_zoom: int, max_tiles: int) -> int:
    """Return the deepest zoom whose tiles from ``min_zoom`` down to it, over ``box``, are at most ``max_tiles``.

    Parameters
    ----------
    box : tuple of float
        (west, south, east, north) in degrees.
    min_zoom, max_zoom : int
        The zoom levels the map shows.
    max_tiles : int
        The most tiles the overview may hold.

    Returns
    -------
    int
        A zoom level from ``min_zoom - 1`` (no level fits) to ``max_zoom``.

    """
    total = 0
    for z in range(min_zoom, max_zoom + 1):
        total += tile_count(z, box)
        if total > max_tiles:
            return z - 1
    return max_zoom


@dataclass(frozen=True)
class TileView:
    """What the map may show with tiles: the box (west, south, east, north), the zoom levels, the overview's."""

    box: Box
    min_zoom: int
    max_zoom: int
    overview_max_zoom: int = -1

    def overview_tiles(self) -> int:
        """Return how many tiles the overview holds."""
        return sum(tile_count(z, self.box) for z in range(self.min_zoom, self.overview_max_zoom + 1))
