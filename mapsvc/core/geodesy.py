"""The Earth's shape in one place: its constants, degrees for metres, distances and moves.

Every answer here is one of three kinds, and its name or docstring says which:

- **exact**, on the WGS84 ellipsoid with pyproj's geodesics (Karney's algorithm):
  :func:`geodesic_distance_m`, :func:`move_geodesic`, and :func:`local_projection` (azimuthal
  equidistant about a centre). These decide what is published or kept: the fuzz, the reuse and
  merge distances, the service area's distances and clamping.
- **conservative** degrees for metres: :func:`degrees_of_latitude`, :func:`degrees_of_longitude`
  and :func:`widened_box` give at least as many degrees as the metres can span (below
  :data:`POLAR_LIMIT_DEG`), by dividing by :data:`MIN_METRES_PER_DEGREE`. A search box in degrees
  (an index range) made with them never misses a point that an exact test following it would
  accept, so the box changes how much is read, never what is found.
- **nominal**, about right and cheap: :data:`NOMINAL_METRES_PER_DEGREE` (the tile margin,
  :func:`flat_offset` for the demo's scatter), and :func:`equirectangular_m`, metres on a sphere
  of :data:`MEAN_RADIUS_M` about an origin, for a street network (under one per cent off over a
  city).

Nothing here keeps state or reads a file. The phone's fuzz (``static/js/fuzz.js``) moves points
on a sphere of the same mean radius; being JavaScript, it keeps its own copy of the number.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import Geod, Transformer

#: The WGS84 ellipsoid, for exact distances and moves (``Geod.inv``, ``Geod.fwd``).
WGS84 = Geod(ellps="WGS84")

#: WGS84's equatorial radius (semi-major axis), in metres: 6 378 137.
EQUATORIAL_RADIUS_M: float = WGS84.a

#: The Earth's mean radius (IUGG, R1 = (2a + b) / 3), in metres: for local flat approximations.
MEAN_RADIUS_M = 6_371_008.8

#: The fewest metres a degree of latitude has anywhere, rounded down: WGS84's meridian curves most
#: sharply at the equator, where a degree of latitude is 110 574.39 m (towards the poles it grows
#: to 111 694 m), and a degree of longitude is never shorter than this times the cosine of its
#: latitude (it is 111 319.49 m at the equator). Dividing metres by it gives degrees that are
#: never too few: for boxes that must hold a distance.
MIN_METRES_PER_DEGREE = 110_574.0

#: A degree of the equator (2 pi a / 360 = 111 319.49 m), rounded: the usual nominal value, for
#: margins and offsets that need only be about right.
NOMINAL_METRES_PER_DEGREE = 111_320.0

#: Degrees of longitude are taken at no latitude nearer a pole than this: they grow without bound
#: there. No service area the map can show comes near (Web Mercator ends at 85.05 degrees), so
#: this only keeps the division finite; beyond it a box is no longer sure to hold the distance.
POLAR_LIMIT_DEG = 89.9

#: (west, south, east, north), or (min lon, min lat, max lon, max lat), in degrees.
Box = tuple[float, float, float, float]


def degrees_of_latitude(metres: float, metres_per_degree: float = MIN_METRES_PER_DEGREE) -> float:
    """Return the degrees of latitude ``metres`` span; by default never too few (conservative).

    Parameters
    ----------
    metres : float
        A distance in metres.
    metres_per_degree : float
        :data:`MIN_METRES_PER_DEGREE` (the default: conservative) or
        :data:`NOMINAL_METRES_PER_DEGREE` (about right).

    """
    return metres / metres_per_degree


def degrees_of_longitude(metres: float, lat: float, metres_per_degree: float = MIN_METRES_PER_DEGREE) -> float:
    """Return the degrees of longitude ``metres`` span at latitude ``lat``; by default never too few.

    A degree of longitude narrows towards the poles: pass the latitude nearest a pole that the
    distance can reach (a box's edge plus its latitude margin), and the degrees are enough at every
    latitude nearer the equator. The latitude is taken at most :data:`POLAR_LIMIT_DEG`.

    Parameters
    ----------
    metres : float
        A distance in metres.
    lat : float
        The latitude, in degrees (either sign).
    metres_per_degree : float
        As for :func:`degrees_of_latitude`.

    """
    polar = min(abs(lat), POLAR_LIMIT_DEG)
    return degrees_of_latitude(metres, metres_per_degree) / math.cos(math.radians(polar))


def widened_box(box: Box, margin_m: float, metres_per_degree: float = MIN_METRES_PER_DEGREE) -> Box:
    """Return ``box`` grown by ``margin_m`` on every side, kept on the globe; by default by at least that.

    The longitude margin is taken at the latitude nearest a pole that the grown box reaches, so
    with the default :data:`MIN_METRES_PER_DEGREE` every point within ``margin_m`` of the box lies
    in the result, whether the distance is a geodesic on WGS84 or one on the mean sphere (both give
    a degree more metres than that): a search box never misses one. A point's box is
    ``widened_box((lon, lat, lon, lat), distance_m)``.

    Parameters
    ----------
    box : tuple of float
        (west, south, east, north) in degrees.
    margin_m : float
        The margin in metres.
    metres_per_degree : float
        As for :func:`degrees_of_latitude`: pass :data:`NOMINAL_METRES_PER_DEGREE` for a margin
        that need only be about right.

    """
    west, south, east, north = box
    dlat = degrees_of_latitude(margin_m, metres_per_degree)
    dlon = degrees_of_longitude(margin_m, max(abs(south), abs(north)) + dlat, metres_per_degree)
    return (max(west - dlon, -180.0), max(south - dlat, -90.0), min(east + dlon, 180.0), min(north + dlat, 90.0))


def flat_offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """Return the point ``north_m`` north and ``east_m`` east of (lat, lon), about right over a few km.

    Nominal (:data:`NOMINAL_METRES_PER_DEGREE`, the east-west degree at the start's latitude): for
    scattering made-up points, never for anything published from a true one
    (:func:`move_geodesic` is exact).
    """
    moved_lat = lat + north_m / NOMINAL_METRES_PER_DEGREE
    moved_lon = lon + east_m / (NOMINAL_METRES_PER_DEGREE * math.cos(math.radians(lat)))
    return moved_lat, moved_lon


def equirectangular_m(
    lon: ArrayLike, lat: ArrayLike, origin_lon: float, origin_lat: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return points as metres east and north of an origin, on the mean sphere (equirectangular).

    East-west metres are those of the origin's latitude: over a city (tens of kilometres) the error
    is well under one per cent. Cheap and vectorised, for a street network's nodes and samples.
    """
    x = np.radians(np.asarray(lon, dtype=float) - origin_lon) * np.cos(np.radians(origin_lat)) * MEAN_RADIUS_M
    y = np.radians(np.asarray(lat, dtype=float) - origin_lat) * MEAN_RADIUS_M
    return x, y


def geodesic_distance_m(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> NDArray[np.float64]:
    """Return the WGS84 geodesic distance in metres between point pairs (exact)."""
    _, _, dist = WGS84.inv(
        np.asarray(lon1, dtype=float),
        np.asarray(lat1, dtype=float),
        np.asarray(lon2, dtype=float),
        np.asarray(lat2, dtype=float),
    )
    return np.asarray(dist, dtype=float)


def move_geodesic(
    lat: ArrayLike, lon: ArrayLike, bearing_deg: ArrayLike, distance_m: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the points reached by travelling ``distance_m`` along ``bearing_deg`` on WGS84 (exact).

    Bearings are in degrees clockwise from north; returns (latitudes, longitudes).
    """
    lon2, lat2, _ = WGS84.fwd(
        np.asarray(lon, dtype=float),
        np.asarray(lat, dtype=float),
        np.asarray(bearing_deg, dtype=float),
        np.asarray(distance_m, dtype=float),
    )
    return np.asarray(lat2, dtype=float), np.asarray(lon2, dtype=float)


Projection = Callable[..., tuple[float, float]]


def local_projection(lat: float, lon: float) -> tuple[Projection, Projection]:
    """Return (to metres, to degrees): WGS84 longitude/latitude to and from metres about a centre.

    An azimuthal equidistant projection centred on (lat, lon): distances from the centre are
    exact geodesics, others close to them over a city. Both functions take and return x first
    (longitude, easting), and accept arrays as well as numbers.
    """
    aeqd = f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m"
    to_metres = Transformer.from_crs("EPSG:4326", aeqd, always_xy=True).transform
    to_degrees = Transformer.from_crs(aeqd, "EPSG:4326", always_xy=True).transform
    return to_metres, to_degrees
