"""Gi* hotspots: the same numbers as esda run directly on the same input, FDR as Benjamini-Hochberg."""

from __future__ import annotations

import random
import warnings

import h3
import numpy as np
import pytest
from esda.getisord import G_Local
from libpysal.weights import W
from shapely.geometry import box

from mapsvc.core.area import CITIES
from mapsvc.core.hotspots import getis_ord, ring_weights, study_cells

CELLS = study_cells(box(*CITIES["bishkek"].bounds), 8)


def clustered_counts(seed: int) -> dict[str, int]:
    """Background of scattered published counts (0 or at least 5) and one dense cluster."""
    rng = random.Random(seed)
    counts = {c: rng.choice([0, 0, 0, 0, 5, 6]) for c in CELLS}
    core = CELLS[len(CELLS) // 2]
    for cell in h3.grid_disk(core, 1):
        if cell in counts:
            counts[cell] = 40
    return counts


def esda_directly(counts: dict[str, int], permutations: int, seed: int):
    """Build the weights by hand from H3 rings and run esda's G_Local as its docs show."""
    index = {c: i for i, c in enumerate(CELLS)}
    neighbours = {index[c]: [index[n] for n in h3.grid_ring(c, 1) if n in index] for c in CELLS}
    w = W(neighbours, silence_warnings=True)
    y = np.array([counts.get(c, 0) for c in CELLS], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return G_Local(y, w, transform="B", star=True, permutations=permutations, seed=seed)


def test_results_equal_esda_run_directly():
    counts = clustered_counts(1)

    ours = getis_ord(counts, CELLS, permutations=499, seed=42)
    theirs = esda_directly(counts, 499, 42)

    assert [c.z for c in ours.cells] == pytest.approx(list(theirs.Zs), rel=1e-12)
    greater = (theirs.rGs >= theirs.Gs[:, None]).sum(axis=1)
    lesser = (theirs.rGs <= theirs.Gs[:, None]).sum(axis=1)
    two_sided = np.minimum(1, 2 * (np.minimum(greater, lesser) + 1) / (499 + 1))
    assert [c.p for c in ours.cells] == pytest.approx(list(two_sided), rel=1e-12)
    # Where no draw ties with the observed value, this is twice esda's own "directed" p-value.
    untied = (theirs.rGs != theirs.Gs[:, None]).all(axis=1)
    assert np.allclose(np.array([c.p for c in ours.cells])[untied], np.minimum(1, 2 * theirs.p_sim[untied]))
    assert [c.events for c in ours.cells] == [counts[c] for c in CELLS]


def test_fdr_is_benjamini_hochberg():
    ours = getis_ord(clustered_counts(2), CELLS, permutations=999, seed=7)
    p = sorted(c.p for c in ours.cells)
    n = len(p)
    passing = [k for k in range(1, n + 1) if p[k - 1] <= k / n * ours.alpha]
    significant = sum(1 for c in ours.cells if c.kind)

    assert significant == (max(passing) if passing else 0)


def test_the_cluster_is_hot_and_nothing_far_from_it_is():
    counts = clustered_counts(3)
    core = CELLS[len(CELLS) // 2]

    result = getis_ord(counts, CELLS, permutations=9999, seed=1)

    assert core in {c.cell for c in result.hot}
    assert {c.cell for c in result.hot} <= set(h3.grid_disk(core, 2))


def test_empty_cells_among_empty_neighbours_are_not_cold_spots():
    """Ties: a 0 among 0s is what most permutations give too, so it is no evidence of anything."""
    counts = {c: 0 for c in CELLS}
    counts.update({c: 9 for c in CELLS[:40]})

    result = getis_ord(counts, CELLS, permutations=999, seed=2)
    far = [c for c in result.cells if all(counts.get(n, 0) == 0 for n in h3.grid_disk(c.cell, 2))]

    assert far and all(c.kind == "" for c in far)


def test_an_empty_area_has_no_hotspots():
    result = getis_ord({}, CELLS, permutations=99, seed=1)

    assert result.hot == [] and result.cold == []


def test_the_seed_makes_results_repeatable():
    counts = clustered_counts(4)

    first = getis_ord(counts, CELLS, permutations=199, seed=5)
    second = getis_ord(counts, CELLS, permutations=199, seed=5)

    assert first.cells == second.cells


def test_ring_weights_link_each_cell_to_its_six_neighbours_inside():
    cells = sorted(h3.grid_disk(CELLS[100], 2))
    w = ring_weights(cells)
    centre = cells.index(CELLS[100])

    assert w.cardinalities[centre] == 6
    assert min(w.cardinalities.values()) >= 2


def test_too_few_permutations_find_nothing_among_many_cells():
    """FDR over 359 cells needs p below 0.05/359: 999 permutations cannot give less than 0.002."""
    result = getis_ord(clustered_counts(3), CELLS, permutations=999, seed=1)

    assert result.hot == [] and min(c.p for c in result.cells) == pytest.approx(0.002)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"permutations": 10}, "permutations"), ({"permutations": 99_999}, "permutations"), ({"alpha": 0.9}, "alpha")],
)
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        getis_ord({}, CELLS, **kwargs)
