"""A route as a turn list: one step per street, with the turn onto it and how far to follow it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mapsvc.core.routing import Route
from mapsvc.core.streets import StreetNetwork

#: Heading changes (degrees, absolute) from which a turn is slight, plain or sharp, or a U-turn.
SLIGHT_DEG, TURN_DEG, SHARP_DEG, U_TURN_DEG = 25.0, 60.0, 120.0, 165.0


@dataclass(frozen=True)
class Step:
    """Follow a street: ``turn`` onto it (``depart`` first), for ``distance_m`` metres.

    ``name`` is the street's OSM name, None when it has none; ``highway`` its kind
    (``footway``, ``residential``...), for describing unnamed ways.
    """

    turn: str
    name: str | None
    highway: str
    distance_m: float


def turn_of(change_deg: float) -> str:
    """Return the turn for a heading change in degrees (positive: to the right, clockwise)."""
    size = abs(change_deg)
    if size < SLIGHT_DEG:
        return "straight"
    if size >= U_TURN_DEG:
        return "u_turn"
    side = "right" if change_deg > 0 else "left"
    if size < TURN_DEG:
        return f"slight_{side}"
    return f"sharp_{side}" if size >= SHARP_DEG else side


def _heading(network: StreetNetwork, a: int, b: int) -> float | None:
    """Return the compass heading from node a to node b in degrees, None for a zero-length step."""
    dx, dy = network.xy[b] - network.xy[a]
    if math.hypot(dx, dy) < 0.5:
        return None
    return math.degrees(math.atan2(dx, dy)) % 360.0


def steps(network: StreetNetwork, route: Route) -> list[Step]:
    """Return the turn list of ``route``: consecutive edges of one street become one step."""
    found: list[Step] = []
    heading_in: float | None = None
    for i, edge in enumerate(route.edges):
        a, b = route.nodes[i], route.nodes[i + 1]
        name, kind = network.name[edge], network.highway[edge]
        length = float(network.length_m[edge])
        heading = _heading(network, a, b)
        same = found and found[-1].name == name and (name is not None or found[-1].highway == kind)
        if same:
            last = found[-1]
            found[-1] = Step(last.turn, last.name, last.highway, last.distance_m + length)
        else:
            turn = "depart" if not found else _turn(heading_in, heading)
            found.append(Step(turn, name, kind, length))
        heading_in = heading if heading is not None else heading_in
    return [s for s in found if s.distance_m > 0 or s.turn == "depart"]


def _turn(heading_in: float | None, heading_out: float | None) -> str:
    if heading_in is None or heading_out is None:
        return "straight"
    change = (heading_out - heading_in + 180.0) % 360.0 - 180.0
    return turn_of(float(np.round(change, 6)))
