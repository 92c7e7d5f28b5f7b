"""Repeats of one place publish one point: reuse an already published point instead of fresh noise.

After the predictive mechanism of Chatzikokolakis, Palamidessi and Stronati (PETS 2014), with a
fixed test; see ``shared/design/privacy.md`` §7 and docs/privacy.md, "Repeated reports of one
place", for the guarantee and its derivation. Before noise is drawn for a true point, the points
already published for the category are tested in the order they were first published; the first
that lies within the reuse distance theta of the true point is published again. Only when none
does is a fresh draw made, and that draw joins the points tested next time.

Oldest first, not nearest: the nearest published point would tell which of the published
points' Voronoi cells holds the true point (small cells where points are dense), and would
switch a place to every newer point drawn near it. The test has no noise: a noisy test publishes
a fresh draw at each failure, and the draws average back to the truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mapsvc.core.geodesy import geodesic_distance_m

#: Default theta in units of 1/epsilon. A fresh draw lands within theta with probability
#: C(4) = 1 - 5 e^-4 = 0.908, so a place publishes 1.10 points on average, however often it is
#: reported (see docs/privacy.md for the derivation).
DEFAULT_REUSE_FACTOR = 4.0


def first_within(
    lat: float, lon: float, published: Sequence[tuple[float, float]], distance_m: float
) -> tuple[float, float] | None:
    """Return the first of ``published`` within ``distance_m`` of (lat, lon), or None.

    Parameters
    ----------
    lat, lon : float
        The true point, in degrees.
    published : sequence of (lat, lon)
        Points already published for the category, oldest first.
    distance_m : float
        The reuse distance theta in metres (geodesic, WGS84); a point at exactly theta is reused.

    """
    if not (distance_m >= 0 and np.isfinite(distance_m)):
        raise ValueError("distance_m must be a finite number of metres, not negative")
    if not published:
        return None
    points = np.asarray(published, dtype=float)
    count = len(points)
    distances = geodesic_distance_m(np.full(count, lat), np.full(count, lon), points[:, 0], points[:, 1])
    within = np.flatnonzero(distances <= distance_m)
    if within.size == 0:
        return None
    first = published[int(within[0])]
    return float(first[0]), float(first[1])
