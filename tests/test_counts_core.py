"""Count atoms: suppression holds under every filter combination, resolution and district grouping."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import h3
import pytest

from mapsvc.core.counts import (
    CountAtom,
    Month,
    Selection,
    build_atoms,
    by_category,
    by_month,
    by_perpetrator,
    cell_at,
    hour_of_day,
    in_districts,
    months_between,
    published,
    selected,
    time_breakdown,
    totals,
    weekday,
)

CATEGORIES = ("raid", "checkpoint", "attack")
PERPETRATORS = ("police", "client", "unknown")
MONTHS = [Month(2026, m) for m in (3, 4, 5)]
MIN = {"raid": 5, "checkpoint": 5, "attack": 6}
CENTRE = h3.latlng_to_cell(42.8746, 74.5698, 5)
CELLS = sorted(h3.cell_to_children(CENTRE, 7))[:40]
#: Two made-up districts splitting the cells, and some cells in none.
DISTRICTS = {c: ("north" if i % 3 == 0 else "south" if i % 3 == 1 else None) for i, c in enumerate(CELLS)}


def random_atoms(rng: random.Random) -> list[CountAtom]:
    atoms = []
    for cell, category, perpetrator, month in itertools.product(CELLS, CATEGORIES, PERPETRATORS, MONTHS):
        events = rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 8, 13])
        if events:
            atoms.append(CountAtom(cell, category, perpetrator, month, events))
    return atoms


def subsets(items):
    return [frozenset(c) for r in range(1, len(items) + 1) for c in itertools.combinations(items, r)]


SELECTIONS = [
    Selection(first, last, categories, perpetrators)
    for first, last in [(MONTHS[0], MONTHS[0]), (MONTHS[0], MONTHS[2]), (MONTHS[1], MONTHS[2])]
    for categories in subsets(CATEGORIES)
    for perpetrators in subsets(PERPETRATORS)
]
GROUPINGS = [
    (cell_at(7),),
    (cell_at(6),),
    (cell_at(5),),
    (cell_at(7), by_month, by_category),
    (cell_at(6), by_month, by_perpetrator),
    (in_districts(DISTRICTS),),
    (in_districts(DISTRICTS), by_month, by_category),
    (by_month, by_category),
    (by_month, by_perpetrator),
    (by_category,),
    (),
]


def every_output(atoms: list[CountAtom]) -> list[dict]:
    return [totals(selected(atoms, s, MIN), *keys) for s in SELECTIONS for keys in GROUPINGS]


def test_no_output_changes_when_hidden_atoms_change():
    """Whatever the filters and grouping, a hidden atom cannot be seen, so no subtraction recovers it."""
    rng = random.Random(5)
    atoms = random_atoms(rng)
    hidden = [a for a in atoms if a.events < MIN[a.category]]
    assert len(hidden) > 100
    changed = [a for a in atoms if a.events >= MIN[a.category]]
    changed += [
        CountAtom(a.cell, a.category, a.perpetrator, a.month, rng.randint(1, MIN[a.category] - 1)) for a in hidden
    ]
    changed += (
        [CountAtom(CELLS[0], "raid", "police", Month(2026, 4), 4)]
        if not any(
            (a.cell, a.category, a.perpetrator, a.month) == (CELLS[0], "raid", "police", Month(2026, 4)) for a in atoms
        )
        else []
    )

    assert every_output(changed) == every_output(atoms)


def test_a_published_atom_changing_does_change_the_outputs():
    """The invariance above is not vacuous: outputs do depend on published atoms."""
    atoms = random_atoms(random.Random(5))
    i = next(i for i, a in enumerate(atoms) if a.events >= MIN[a.category])
    bumped = [*atoms[:i], CountAtom(atoms[i].cell, atoms[i].category, atoms[i].perpetrator, atoms[i].month, 50)]
    bumped += atoms[i + 1 :]

    assert every_output(bumped) != every_output(atoms)


def test_every_output_is_the_sum_of_its_published_atoms_and_never_below_the_minimum():
    atoms = random_atoms(random.Random(9))
    for selection in SELECTIONS:
        chosen = [a for a in atoms if selection.holds(a) and a.events >= MIN[a.category]]
        for keys in GROUPINGS:
            for group, value in totals(selected(atoms, selection, MIN), *keys).items():
                expected = sum(a.events for a in chosen if tuple(k(a) for k in keys) == group)
                assert value == expected
                assert value >= min(MIN[c] for c in selection.categories)


@pytest.mark.parametrize("coarse", [6, 5])
def test_a_parent_cell_is_exactly_the_sum_of_its_visible_children(coarse):
    """The subtraction attack finds nothing: parent minus visible children is always 0."""
    atoms = random_atoms(random.Random(11))
    for selection in SELECTIONS[:: len(SELECTIONS) // 12]:
        chosen = selected(atoms, selection, MIN)
        children = totals(chosen, cell_at(7))
        parents = totals(chosen, cell_at(coarse))
        for (parent,), value in parents.items():
            visible = sum(v for (child,), v in children.items() if h3.cell_to_parent(child, coarse) == parent)
            assert value - visible == 0


def test_districts_add_up_to_the_city_with_the_outside_row():
    atoms = random_atoms(random.Random(3))
    selection = SELECTIONS[-1]
    chosen = selected(atoms, selection, MIN)

    by_district = totals(chosen, in_districts(DISTRICTS))

    assert set(by_district) <= {("north",), ("south",), ("",)}
    assert sum(by_district.values()) == totals(chosen)[()]


def test_build_atoms_lifts_cells_and_takes_months_in_the_local_zone():
    zone = ZoneInfo("Asia/Bishkek")  # UTC+6
    fine = h3.latlng_to_cell(42.8746, 74.5698, 8)
    late = datetime(2026, 3, 31, 19, tzinfo=UTC)  # 1 April, 01:00 in Bishkek
    rows = [
        (fine, "raid", "police", late, 2),
        (fine, "raid", "police", late + timedelta(hours=1), 3),
        (fine, "raid", "police", datetime(2026, 3, 30, tzinfo=UTC), 1),
    ]

    atoms = build_atoms(rows, 7, zone)

    assert [(a.cell, a.month, a.events) for a in atoms] == [
        (h3.cell_to_parent(fine, 7), Month(2026, 3), 1),
        (h3.cell_to_parent(fine, 7), Month(2026, 4), 5),
    ]
    assert atoms[1].buckets == ((late, 2), (late + timedelta(hours=1), 3))


def test_build_atoms_refuses_a_resolution_finer_than_the_stored_cells():
    with pytest.raises(ValueError, match="finer"):
        build_atoms([(CELLS[0], "raid", "police", datetime(2026, 3, 1, tzinfo=UTC), 1)], 8, ZoneInfo("UTC"))


def test_time_breakdowns_divide_published_atoms_only():
    zone = ZoneInfo("Asia/Bishkek")
    t = datetime(2026, 4, 6, 16, tzinfo=UTC)  # Monday 22:00 in Bishkek
    shown = CountAtom(CELLS[0], "raid", "police", Month(2026, 4), 5, ((t, 2), (t + timedelta(hours=3), 3)))
    hidden = CountAtom(CELLS[1], "raid", "police", Month(2026, 4), 4, ((t, 4),))
    atoms = published([shown, hidden], MIN)

    hours = time_breakdown(atoms, hour_of_day(zone), 24)
    days = time_breakdown(atoms, weekday(zone), 7)

    assert hours["raid"][22] == 2 and hours["raid"][1] == 3 and sum(hours["raid"]) == 5
    assert days["raid"] == [2, 3, 0, 0, 0, 0, 0]


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [(Month(2026, 5), Month(2026, 4), "ends before"), (Month(2026, 4), Month(2026, 5), "at least one")],
)
def test_selection_refuses_empty_or_reversed(first, last, message):
    with pytest.raises(ValueError, match=message):
        Selection(first, last, frozenset() if message == "at least one" else frozenset({"raid"}), frozenset({"x"}))


def test_months_parse_and_span_years():
    assert months_between(Month.parse("2025-11"), Month.parse("2026-02")) == [
        Month(2025, 11),
        Month(2025, 12),
        Month(2026, 1),
        Month(2026, 2),
    ]
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse("2026-13")
