"""Heat cells: aggregation of decayed events on H3 hexagons with consistent suppression.

Suppression follows privacy.md §3. The unit of suppression is an *atom*: one category in one
H3 cell at the finest resolution the service keeps. An atom is published only when it holds at
least the category's minimum count of distinct live events; every coarser cell and every mix of
categories is the sum of published atoms alone. A hidden atom therefore contributes to no
output at all, and no "parent minus visible children" subtraction can recover it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import NamedTuple

import h3

#: Finest resolution kept by default: hexagons of about 0.74 km², comparable to the fuzz noise.
DEFAULT_ATOM_RESOLUTION = 8

#: How many levels coarser than the atoms a client may ask for.
COARSER_LEVELS = 4


class Atom(NamedTuple):
    """Decayed heat of one category in one finest-resolution cell at one moment.

    Named tuples (here and :class:`HeatCell`): a heat read makes one per series in view.
    """

    cell: str
    category: str
    intensity: float
    live_events: int


class HeatCell(NamedTuple):
    """A published cell: summed intensity and live event count of its published atoms."""

    cell: str
    intensity: float
    events: int


def cell_of(lat: float, lon: float, resolution: int = DEFAULT_ATOM_RESOLUTION) -> str:
    """Return the H3 cell index at ``resolution`` holding the point."""
    return str(h3.latlng_to_cell(lat, lon, resolution))


def allowed_resolutions(atom_resolution: int = DEFAULT_ATOM_RESOLUTION) -> range:
    """Return the resolutions a heat request may ask for."""
    return range(max(atom_resolution - COARSER_LEVELS, 0), atom_resolution + 1)


def publishable(atoms: Iterable[Atom], min_counts: Mapping[str, int]) -> list[Atom]:
    """Return the atoms whose live event count reaches their category's minimum."""
    return [a for a in atoms if a.live_events >= min_counts[a.category] and a.live_events > 0]


def aggregate(atoms: Iterable[Atom], resolution: int, min_counts: Mapping[str, int]) -> list[HeatCell]:
    """Return heat cells at ``resolution`` built only from publishable atoms.

    Parameters
    ----------
    atoms : iterable of Atom
        Atoms at the atom resolution, of any categories.
    resolution : int
        H3 resolution of the output; not finer than the atoms'.
    min_counts : mapping of category to int
        Minimum live events per atom for it to be published.

    """
    totals: dict[str, tuple[float, int]] = {}
    for atom in publishable(atoms, min_counts):
        atom_resolution = h3.get_resolution(atom.cell)
        if atom_resolution < resolution:
            raise ValueError("resolution is finer than the stored heat cells")
        cell = atom.cell if atom_resolution == resolution else h3.cell_to_parent(atom.cell, resolution)
        intensity, events = totals.get(cell, (0.0, 0))
        totals[cell] = (intensity + atom.intensity, events + atom.live_events)
    return [HeatCell(cell, intensity, events) for cell, (intensity, events) in sorted(totals.items())]


@lru_cache(maxsize=65536)
def cell_polygon(cell: str) -> tuple[tuple[float, float], ...]:
    """Return the cell's boundary as a closed GeoJSON ring of (lon, lat) pairs, 5 decimals."""
    ring = tuple((round(lon, 5), round(lat, 5)) for lat, lon in h3.cell_to_boundary(cell))
    return (*ring, ring[0])
