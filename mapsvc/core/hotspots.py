"""Hotspots for advocates: Getis-Ord Gi* on H3 cells with permutation p-values and FDR control.

The input is the *published* count of each cell (sums of published count atoms, see
``mapsvc.core.counts``); a cell whose atoms are all hidden enters as 0, like a cell with no
events. Hidden counts never reach the statistic.

Method (privacy.md §6): ``esda.G_Local(y, w, star=True, transform="B")`` with binary weights from
H3 ring-1 adjacency among the study cells (every cell of the chosen resolution whose centre lies
in the service area), the cell itself included with weight 1 (that is the "star"). Pseudo
p-values come from esda's conditional permutations (``permutations`` draws, seedable): from its
reference distribution of each cell we take the two-sided value
``min(1, 2 * min(p_greater, p_lesser))`` with ``esda.significance.calculate_significance``, where
ties count against significance. (esda's default "directed" value counts ties only one way: a
cell of 0 among neighbours of 0, whose permuted values are mostly 0 too, would come out as a
cold spot at p = 1/(permutations + 1). Mostly-empty maps are common here.) Significance is
decided by the Benjamini-Hochberg false-discovery-rate threshold (``esda.fdr``) at level
``alpha``: a hot spot has z > 0, a cold spot z < 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import h3
import numpy as np
from shapely.geometry import MultiPolygon, Polygon

# esda and libpysal are loaded where they are used: together they take most of a second, which
# the service and every CLI command would otherwise pay at start.
if TYPE_CHECKING:
    from esda.getisord import G_Local
    from libpysal.weights import W

#: The smallest two-sided pseudo p-value is 2/(permutations + 1); with FDR control over n cells
#: the strongest cell must reach alpha/n, so a few hundred cells need thousands of permutations.
DEFAULT_PERMUTATIONS = 9999
DEFAULT_ALPHA = 0.05
#: Most simulated statistics kept at once (cells x permutations): 160 MB of float64.
MAX_DRAWS = 20_000_000


@dataclass(frozen=True)
class HotspotCell:
    """Gi* of one cell: its published count, z-score, two-sided pseudo p-value and verdict."""

    cell: str
    events: int
    z: float
    p: float
    kind: str  # "hot", "cold" or "" (not significant after FDR control)


@dataclass(frozen=True)
class HotspotResult:
    """Gi* over the study cells, with the parameters that produced it."""

    cells: list[HotspotCell]
    resolution: int
    permutations: int
    alpha: float
    fdr_threshold: float
    seed: int | None

    @property
    def hot(self) -> list[HotspotCell]:
        """Return the significant hot spots."""
        return [c for c in self.cells if c.kind == "hot"]

    @property
    def cold(self) -> list[HotspotCell]:
        """Return the significant cold spots."""
        return [c for c in self.cells if c.kind == "cold"]


def study_cells(area: Polygon | MultiPolygon, resolution: int) -> list[str]:
    """Return the H3 cells at ``resolution`` whose centres lie in ``area`` (lon/lat degrees), sorted."""
    shape = h3.geo_to_h3shape(area.__geo_interface__)
    return sorted(str(c) for c in h3.h3shape_to_cells(shape, resolution))


def ring_weights(cells: Sequence[str]) -> W:
    """Return binary libpysal weights linking each cell to its ring-1 neighbours among ``cells``."""
    from libpysal.weights import W

    index = {cell: i for i, cell in enumerate(cells)}
    neighbours = {i: sorted(index[n] for n in h3.grid_ring(cell, 1) if n in index) for i, cell in enumerate(cells)}
    return W(neighbours, id_order=list(range(len(cells))), silence_warnings=True)


def getis_ord(
    counts: Mapping[str, int],
    cells: Sequence[str],
    permutations: int = DEFAULT_PERMUTATIONS,
    alpha: float = DEFAULT_ALPHA,
    seed: int | None = None,
) -> HotspotResult:
    """Return Gi* hot and cold spots of ``counts`` over the study ``cells``.

    Parameters
    ----------
    counts : mapping of cell to int
        Published event counts; cells absent from it count 0. Cells outside ``cells`` are ignored.
    cells : sequence of str
        The study cells, all of one H3 resolution (at least 3 needed).
    permutations : int
        Conditional permutations for the pseudo p-values (99 to 99999).
    alpha : float
        False-discovery rate, between 0 and 0.5.
    seed : int, optional
        Seed of the permutations, for repeatable results.

    """
    if len(cells) < 3:
        raise ValueError("hotspots need at least 3 cells in the study area")
    if not 99 <= permutations <= 99_999:
        raise ValueError("permutations must lie between 99 and 99999")
    if not 0 < alpha <= 0.5:
        raise ValueError("alpha must lie between 0 and 0.5")
    if len(cells) * permutations > MAX_DRAWS:
        raise ValueError(f"permutations: at most {MAX_DRAWS // len(cells)} for {len(cells)} cells")
    resolution = h3.get_resolution(cells[0])
    y = np.array([counts.get(c, 0) for c in cells], dtype=float)
    if y.sum() == 0:
        empty = [HotspotCell(c, 0, 0.0, 1.0, "") for c in cells]
        return HotspotResult(empty, resolution, permutations, alpha, alpha / len(cells), seed)
    from esda import fdr

    g = run_g_local(y, ring_weights(cells), permutations, seed)
    p = two_sided(np.asarray(g.Gs, dtype=float), np.asarray(g.rGs, dtype=float))
    threshold = float(fdr(p, alpha))
    z = np.nan_to_num(np.asarray(g.Zs, dtype=float))
    found = [
        HotspotCell(cell, int(y[i]), float(z[i]), float(p[i]), _kind(z[i], p[i], threshold))
        for i, cell in enumerate(cells)
    ]
    return HotspotResult(found, resolution, permutations, alpha, threshold, seed)


def two_sided(observed: np.ndarray, simulated: np.ndarray) -> np.ndarray:
    """Return two-sided pseudo p-values of ``observed`` (n) against ``simulated`` (n x permutations)."""
    from esda.significance import calculate_significance

    greater = calculate_significance(observed, simulated, alternative="greater")
    lesser = calculate_significance(observed, simulated, alternative="lesser")
    return np.asarray(np.minimum(1.0, 2.0 * np.minimum(greater, lesser)), dtype=float)


def run_g_local(y: np.ndarray, w: W, permutations: int, seed: int | None) -> G_Local:
    """Run esda's Gi* (binary weights, self included) in this process, serially, keeping the draws."""
    from esda.getisord import G_Local

    # With keep_simulations esda also derives z_sim, dividing by the draws' spread, which is 0
    # for a cell whose draws are all equal; we do not use z_sim.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # esda announces a future change of its default alternative; we double its one-sided value.
        warnings.filterwarnings("ignore", message="The alternative hypothesis", category=DeprecationWarning)
        return G_Local(
            y, w, transform="B", star=True, permutations=permutations, seed=seed, n_jobs=1, keep_simulations=True
        )


def _kind(z: float, p: float, threshold: float) -> str:
    if p > threshold or z == 0:
        return ""
    return "hot" if z > 0 else "cold"
