"""The planar Laplace mechanism (geo-indistinguishability) for report locations.

Andrés et al., "Geo-indistinguishability", ACM CCS 2013; see ``shared/design/privacy.md`` §1.
The true point is displaced once, by a bearing drawn uniformly and a distance drawn exactly from
the radial distribution, moved along the WGS84 ellipsoid. Nothing here re-draws, and nothing
here keeps the true point.
"""

from __future__ import annotations

import math
import secrets
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import lambertw

from mapsvc.core.geodesy import move_geodesic

#: Published coordinates keep this many decimals (about 11 m).
COORDINATE_DECIMALS = 4


class UniformSource(Protocol):
    """Anything with ``random()`` returning a float uniform on [0, 1)."""

    def random(self) -> float:
        """Return the next float uniform on [0, 1)."""
        ...


def system_random() -> UniformSource:
    """Return the cryptographic source used in production."""
    return secrets.SystemRandom()


def _check_epsilon(epsilon: float) -> None:
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError("epsilon must be a positive finite number")


def radial_cdf(rho: ArrayLike, epsilon: float) -> NDArray[np.float64]:
    """Return C(rho) = 1 - (1 + eps*rho) * exp(-eps*rho), the displacement distance CDF.

    Parameters
    ----------
    rho : array_like
        Distances in metres.
    epsilon : float
        Laplace parameter in 1/metres.

    """
    _check_epsilon(epsilon)
    x = epsilon * np.asarray(rho, dtype=float)
    cdf: NDArray[np.float64] = np.where(x > 0, 1.0 - (1.0 + x) * np.exp(-x), 0.0)
    return cdf


def inverse_radial_cdf(p: ArrayLike, epsilon: float) -> NDArray[np.float64]:
    """Return the distance in metres at which the radial CDF equals ``p`` (Lambert W₋₁).

    Parameters
    ----------
    p : array_like
        Probabilities in [0, 1).
    epsilon : float
        Laplace parameter in 1/metres.

    """
    _check_epsilon(epsilon)
    p = np.asarray(p, dtype=float)
    if not np.all((p >= 0) & (p < 1)):
        raise ValueError("p must lie in [0, 1)")
    arg = (p - 1.0) / math.e
    # At the branch point -1/e (p = 0 or within rounding of it) W₋₁ is -1; scipy returns nan.
    w = np.where(arg <= -1.0 / math.e, -1.0, np.asarray(lambertw(arg, k=-1).real, dtype=float))
    rho: NDArray[np.float64] = np.maximum(-(w + 1.0) / epsilon, 0.0)
    return rho


def draw_displacements(
    n: int, epsilon: float, rng: UniformSource | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Draw ``n`` (bearing in degrees clockwise from north, distance in metres) pairs.

    Parameters
    ----------
    n : int
        Number of draws.
    epsilon : float
        Laplace parameter in 1/metres; must be positive.
    rng : UniformSource, optional
        Source of uniforms; a cryptographic one when not given. Tests inject a seeded one.

    """
    _check_epsilon(epsilon)
    source = rng if rng is not None else system_random()
    uniforms = np.array([source.random() for _ in range(2 * n)], dtype=float).reshape(2, n)
    bearings = uniforms[0] * 360.0
    distances = inverse_radial_cdf(uniforms[1], epsilon)
    return bearings, distances


def fuzz_points(
    lat: ArrayLike, lon: ArrayLike, epsilon: float, rng: UniformSource | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return planar-Laplace fuzzed copies of the points, not yet rounded or clamped.

    Each point gets its own independent draw; callers must not fuzz the same true point twice
    (see privacy.md, "fresh noise for every repeated report").
    """
    lat_arr = np.atleast_1d(np.asarray(lat, dtype=float))
    lon_arr = np.atleast_1d(np.asarray(lon, dtype=float))
    bearings, distances = draw_displacements(lat_arr.size, epsilon, rng)
    return move_geodesic(lat_arr, lon_arr, bearings, distances)


def fuzz_point(lat: float, lon: float, epsilon: float, rng: UniformSource | None = None) -> tuple[float, float]:
    """Return one fuzzed point (latitude, longitude), not yet rounded or clamped."""
    lats, lons = fuzz_points([lat], [lon], epsilon, rng)
    return float(lats[0]), float(lons[0])


def round_coordinate(value: float) -> float:
    """Round a published coordinate so that low-order float bits carry nothing."""
    return round(float(value), COORDINATE_DECIMALS)
