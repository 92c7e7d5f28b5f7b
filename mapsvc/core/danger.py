"""Danger along the streets: each event spreads its decayed weight over the streets around it.

An event's published point is its true point moved by planar Laplace noise whose scale is set
by the category's fuzz radius r and the privacy level ε (privacy.md §1): seen from the
published point, the true point lies at distance d with a likelihood proportional to
``exp(-ε d / r)``. That is the kernel used here, so the danger is as wide as the fuzz radius:
at d = r a fresh event counts ``e^-ε`` (1/4 at the default level), and beyond ``REACH`` radii
it is cut off (1/16 at the default level, where it would otherwise go on forever).

The risk at a point of a street is the sum over events of
``category weight x decay weight x kernel(distance)``; the planner chooses the category weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from mapsvc.core.streets import Floats, StreetNetwork

#: Kernel support, in fuzz radii.
REACH = 2.0


@dataclass(frozen=True)
class DangerEvent:
    """A live event as the danger sees it: where (degrees), what, how fresh, how fuzzed (metres)."""

    lon: float
    lat: float
    category: str
    weight: float
    radius_m: float


@dataclass(frozen=True)
class StreetRisk:
    """Risk along every edge of a network.

    ``mean`` is the risk averaged along the edge (so ``length x mean`` is the risk integrated
    over it), ``peak`` the highest risk on it, ``in_danger_m`` the metres of it where the risk
    is at least the danger threshold.
    """

    mean: Floats
    peak: Floats
    in_danger_m: Floats
    threshold: float

    @classmethod
    def none(cls, network: StreetNetwork, threshold: float) -> StreetRisk:
        """Return the risk of a network with no live events."""
        zeros = np.zeros(network.edge_count)
        return cls(zeros, zeros, zeros, threshold)


def kernel(distance_m: Floats, radius_m: float | Floats, level: float) -> Floats:
    """Return ``exp(-level d / r)`` within ``REACH`` radii, 0 beyond (dimensionless, 1 at d = 0).

    Parameters
    ----------
    distance_m : array of float
        Distances from the event's published point, in metres.
    radius_m : float or array of float
        The category's fuzz radius, in metres.
    level : float
        The privacy level ε (ln 4 by default).

    """
    scaled = np.asarray(distance_m, dtype=float) / radius_m
    return np.where(scaled <= REACH, np.exp(-level * scaled), 0.0)


def risk_field(
    network: StreetNetwork, events: Sequence[DangerEvent], category_weights: Mapping[str, float], level: float
) -> Floats:
    """Return the risk at every street sample of ``network`` (see :attr:`StreetNetwork.samples`).

    Events are taken a fuzz radius at a time (one per category): scipy pairs them with every
    sample within reach in C, as arrays, rather than a Python list per event.
    """
    points, _ = network.samples
    field = np.zeros(len(points))
    strength = np.array([e.weight * category_weights.get(e.category, 0.0) for e in events])
    live = strength > 0
    if not live.any():
        return field
    where = network.to_metres(np.array([e.lon for e in events]), np.array([e.lat for e in events]))
    radius = np.array([e.radius_m for e in events])
    for r in np.unique(radius[live]):
        group = live & (radius == r)
        pairs = cKDTree(where[group]).sparse_distance_matrix(network.sample_tree, REACH * r, output_type="ndarray")
        contribution = strength[group][pairs["i"]] * kernel(pairs["v"], float(r), level)
        field += np.bincount(pairs["j"], weights=contribution, minlength=len(points))
    return field


def street_risk(
    network: StreetNetwork,
    events: Sequence[DangerEvent],
    category_weights: Mapping[str, float],
    level: float,
    threshold: float,
) -> StreetRisk:
    """Return the risk along every edge from the live events.

    Parameters
    ----------
    network : StreetNetwork
        The streets.
    events : sequence of DangerEvent
        Live events with their decay weight at the planned moment (0 to 1).
    category_weights : mapping of str to float
        How much the planner wants to avoid each category (0 ignores it); missing categories count 0.
    level : float
        The privacy level ε that shaped the fuzzing.
    threshold : float
        Risk from which a piece of street counts as "in danger" for the exposure figures.

    """
    if not events:
        return StreetRisk.none(network, threshold)
    field = risk_field(network, events, category_weights, level)
    _, edge = network.samples
    pieces = np.bincount(edge, minlength=network.edge_count)
    starts = np.cumsum(pieces) - pieces
    mean = np.bincount(edge, weights=field, minlength=network.edge_count) / pieces
    peak = np.maximum.reduceat(field, starts)
    in_danger = np.bincount(edge, weights=(field >= threshold).astype(float), minlength=network.edge_count)
    return StreetRisk(mean, peak, network.length_m * in_danger / pieces, threshold)
