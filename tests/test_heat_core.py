import random
from collections import defaultdict

import h3
import pytest
from shapely.geometry import Point, Polygon

from mapsvc.core.heat import (
    DEFAULT_ATOM_RESOLUTION,
    Atom,
    aggregate,
    allowed_resolutions,
    cell_of,
    cell_polygon,
)

BISHKEK = (42.8746, 74.5698)
MIN_COUNTS = {"checkpoint": 3, "raid": 3, "attack": 5}
RESOLUTIONS = list(allowed_resolutions(DEFAULT_ATOM_RESOLUTION))


def random_atoms(seed, n=250, categories=tuple(MIN_COUNTS)):
    """Atoms on distinct (cell, category) pairs around Bishkek, many of them below the minimum."""
    rng = random.Random(seed)
    centre = h3.latlng_to_cell(*BISHKEK, DEFAULT_ATOM_RESOLUTION)
    cells = sorted(h3.grid_disk(centre, 12))
    pairs = rng.sample([(c, k) for c in cells for k in categories], n)
    return [Atom(cell, category, rng.uniform(0.01, 10.0), rng.randint(1, 8)) for cell, category in pairs]


def as_dict(heat_cells):
    return {c.cell: (c.intensity, c.events) for c in heat_cells}


def naive_aggregate(atoms, resolution, min_counts):
    """The wrong way: sum everything, then suppress each output cell on its own total."""
    totals = defaultdict(lambda: [0.0, 0])
    for atom in atoms:
        totals[h3.cell_to_parent(atom.cell, resolution)][0] += atom.intensity
        totals[h3.cell_to_parent(atom.cell, resolution)][1] += atom.live_events
    floor = min(min_counts.values())
    return {cell: tuple(v) for cell, v in totals.items() if v[1] >= floor}


def subtraction_leaks(published_at):
    """Return (coarse cell, finer resolution, leftover events) for every parent − children ≠ 0."""
    leaks = []
    for coarse, coarse_cells in published_at.items():
        for fine in (r for r in published_at if r > coarse):
            children = defaultdict(int)
            for cell, (_, events) in published_at[fine].items():
                children[h3.cell_to_parent(cell, coarse)] += events
            for cell in coarse_cells.keys() | children.keys():
                leftover = coarse_cells.get(cell, (0.0, 0))[1] - children[cell]
                if leftover != 0:
                    leaks.append((cell, fine, leftover))
    return leaks


# --- publishing atoms --------------------------------------------------------------------------


@pytest.mark.parametrize("minimum", [1, 3, 5])
def test_only_atoms_at_or_above_the_minimum_are_published(minimum):
    atoms = random_atoms(1, categories=("checkpoint",))
    published = as_dict(aggregate(atoms, DEFAULT_ATOM_RESOLUTION, {"checkpoint": minimum}))
    expected = {a.cell: (a.intensity, a.live_events) for a in atoms if a.live_events >= minimum}
    assert published == expected


def test_each_category_uses_its_own_minimum():
    cell = cell_of(*BISHKEK)
    atoms = [Atom(cell, "raid", 1.0, 4), Atom(cell, "attack", 2.0, 4)]
    assert as_dict(aggregate(atoms, DEFAULT_ATOM_RESOLUTION, MIN_COUNTS)) == {cell: (1.0, 4)}


def test_atom_without_live_events_is_never_published():
    atoms = [Atom(cell_of(*BISHKEK), "raid", 0.3, 0)]
    assert aggregate(atoms, DEFAULT_ATOM_RESOLUTION, {"raid": 0}) == []


def test_output_ignores_everything_about_hidden_atoms():
    atoms = random_atoms(2)
    hidden = [a for a in atoms if a.live_events < MIN_COUNTS[a.category]]
    visible = [a for a in atoms if a.live_events >= MIN_COUNTS[a.category]]
    changed = [Atom(a.cell, a.category, a.intensity * 1000, a.live_events) for a in hidden]
    assert hidden
    for resolution in RESOLUTIONS:
        expected = aggregate(visible, resolution, MIN_COUNTS)
        assert aggregate(atoms, resolution, MIN_COUNTS) == expected
        assert aggregate(changed + visible, resolution, MIN_COUNTS) == expected


# --- coarser resolutions -----------------------------------------------------------------------


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_coarser_cells_are_sums_of_published_atoms(resolution):
    atoms = random_atoms(3)
    expected = defaultdict(lambda: [0.0, 0])
    for atom in atoms:
        if atom.live_events >= MIN_COUNTS[atom.category]:
            parent = h3.cell_to_parent(atom.cell, resolution)
            expected[parent][0] += atom.intensity
            expected[parent][1] += atom.live_events
    published = as_dict(aggregate(atoms, resolution, MIN_COUNTS))
    assert published.keys() == expected.keys()
    for cell, (intensity, events) in published.items():
        assert intensity == pytest.approx(expected[cell][0], rel=1e-12)
        assert events == expected[cell][1]


def test_output_cells_have_the_requested_resolution():
    for resolution in RESOLUTIONS:
        cells = aggregate(random_atoms(4), resolution, MIN_COUNTS)
        assert {h3.get_resolution(c.cell) for c in cells} == {resolution}


def test_allowed_resolutions_are_the_atoms_and_four_coarser():
    assert list(allowed_resolutions(8)) == [4, 5, 6, 7, 8]


def test_resolution_finer_than_atoms_is_rejected():
    atoms = [Atom(cell_of(*BISHKEK), "raid", 1.0, 5)]
    with pytest.raises(ValueError):
        aggregate(atoms, DEFAULT_ATOM_RESOLUTION + 1, MIN_COUNTS)


def test_cell_of_holds_the_point():
    cell = cell_of(*BISHKEK)
    assert h3.get_resolution(cell) == DEFAULT_ATOM_RESOLUTION
    assert Polygon(cell_polygon(cell)).contains(Point(BISHKEK[1], BISHKEK[0]))


# --- the subtraction attack --------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_no_parent_minus_children_reveals_a_hidden_count(seed):
    atoms = random_atoms(seed)
    published_at = {r: as_dict(aggregate(atoms, r, MIN_COUNTS)) for r in RESOLUTIONS}
    assert subtraction_leaks(published_at) == []


@pytest.mark.parametrize("seed", range(5))
def test_no_parent_minus_children_reveals_hidden_intensity(seed):
    atoms = random_atoms(seed)
    published_at = {r: as_dict(aggregate(atoms, r, MIN_COUNTS)) for r in RESOLUTIONS}
    for coarse in RESOLUTIONS:
        for fine in (r for r in RESOLUTIONS if r > coarse):
            children = defaultdict(float)
            for cell, (intensity, _) in published_at[fine].items():
                children[h3.cell_to_parent(cell, coarse)] += intensity
            for cell, (intensity, _) in published_at[coarse].items():
                assert intensity - children[cell] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_no_all_categories_minus_each_category_reveals_a_hidden_atom(seed):
    atoms = random_atoms(seed)
    for resolution in RESOLUTIONS:
        per_category = defaultdict(lambda: [0.0, 0])
        for category in MIN_COUNTS:
            for cell, (intensity, events) in as_dict(
                aggregate([a for a in atoms if a.category == category], resolution, MIN_COUNTS)
            ).items():
                per_category[cell][0] += intensity
                per_category[cell][1] += events
        mixed = as_dict(aggregate(atoms, resolution, MIN_COUNTS))
        assert mixed.keys() == per_category.keys()
        for cell, (intensity, events) in mixed.items():
            assert events == per_category[cell][1]
            assert intensity == pytest.approx(per_category[cell][0], rel=1e-12)


def test_subtraction_check_catches_suppression_after_summing():
    atoms = random_atoms(0)
    published_at = {r: naive_aggregate(atoms, r, MIN_COUNTS) for r in RESOLUTIONS}
    assert subtraction_leaks(published_at)


# --- polygons ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    [cell_of(*BISHKEK), cell_of(*BISHKEK, 4), sorted(h3.get_pentagons(5))[0], sorted(h3.get_pentagons(8))[3]],
)
def test_cell_polygon_is_a_closed_lon_lat_ring(cell):
    ring = cell_polygon(cell)
    boundary = h3.cell_to_boundary(cell)
    assert ring[0] == ring[-1]
    assert len(ring) == len(boundary) + 1
    for (lon, lat), (b_lat, b_lon) in zip(ring, boundary, strict=False):
        assert (lon, lat) == (round(b_lon, 5), round(b_lat, 5))
