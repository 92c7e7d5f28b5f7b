"""The web map's tile grid (Web Mercator, as Leaflet and OpenStreetMap number it) against an area.

Pure functions: which box of longitude and latitude a tile ``z/x/y`` covers, the service area's
box widened by a margin, and whether a tile meets that box, judged as Leaflet judges it (a tile
is asked for when it overlaps the layer's ``bounds``), so that the server never refuses a tile
the map asks for.
"""

from __future__ import annotations

import math

#: The latitude at which the Web Mercator square ends, in degrees.
MERCATOR_LAT = math.degrees(math.atan(math.sinh(math.pi)))

#: Metres in one degree of latitude (and of longitude at the equator), on the WGS84 mean radius.
METRES_PER_DEGREE = 111_320.0

#: Slack in degrees (about 0.1 mm): rounding in the browser never makes a wanted tile refused.
SLACK_DEG = 1e-9

#: (west, south, east, north) in degrees.
Box = tuple[float, float, float, float]


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
        The margin in metres (0 or more); east-west degrees are taken at the box's widest latitude.

    """
    if not margin_m >= 0:
        raise ValueError("the margin must be 0 metres or more")
    west, south, east, north = bounds
    dlat = margin_m / METRES_PER_DEGREE
    widest = min(89.0, max(abs(south), abs(north)) + dlat)
    dlon = margin_m / (METRES_PER_DEGREE * math.cos(math.radians(widest)))
    return (
        max(-180.0, west - dlon),
        max(-MERCATOR_LAT, south - dlat),
        min(180.0, east + dlon),
        min(MERCATOR_LAT, north + dlat),
    )


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
