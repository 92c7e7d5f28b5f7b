"""Suppression through the store, on both engines: no advocacy output moves when a hidden atom changes.

Events are written straight into the store (as intake would leave them), then every output the
advocates get (cells at three resolutions, districts, months, categories, perpetrator types,
hour and weekday breakdowns, Gi* input) is read for every filter combination. Adding events to
hidden atoms, while they stay below the minimum, must change none of them; adding one event to
a published atom must change some.
"""

from __future__ import annotations

import itertools
import random
import secrets
from datetime import UTC, datetime, timedelta

import h3
import pytest
from shapely.geometry import box

from mapsvc.core.counts import (
    Month,
    Selection,
    by_category,
    by_month,
    by_perpetrator,
    cell_at,
    hour_of_day,
    in_districts,
    time_breakdown,
    totals,
    weekday,
)
from mapsvc.core.districts import District, assign_cells
from mapsvc.services.advocacy.evidence import Question, gather
from mapsvc.settings import settings
from mapsvc.store.advocacy import replace_districts
from mapsvc.store.models import Event
from tests.conftest import BISHKEK

CATEGORIES = ("raid", "checkpoint", "attack")
PERPETRATORS = ("police", "client")
CENTRE = h3.latlng_to_cell(*BISHKEK, 6)
ATOM_CELLS = sorted(h3.cell_to_children(CENTRE, 7))
MONTHS = [(2026, 4), (2026, 5)]
DISTRICTS = [District("west", box(74.0, 42.0, BISHKEK[1], 43.5)), District("east", box(BISHKEK[1], 42.0, 75.0, 43.5))]


def event(cell7: str, category: str, perpetrator: str, month: tuple[int, int], rng: random.Random) -> Event:
    fine = sorted(h3.cell_to_children(cell7, 8))[rng.randrange(7)]
    lat, lon = h3.cell_to_latlng(fine)
    bucket = datetime(*month, 3, tzinfo=UTC) + timedelta(days=rng.randrange(20), hours=rng.randrange(24))
    if category == "attack":
        bucket = bucket.replace(hour=0)
    return Event(
        public_id=secrets.token_urlsafe(12),
        category=category,
        perpetrator=perpetrator,
        lat=round(lat, 4),
        lon=round(lon, 4),
        bucket_start=bucket,
        heat_cell=fine,
        status="published",
    )


def atom_plan(rng: random.Random) -> dict[tuple, int]:
    plan = {}
    for key in itertools.product(ATOM_CELLS, CATEGORIES, PERPETRATORS, MONTHS):
        plan[key] = rng.choice([0, 1, 2, 4, 5, 6, 9])
    return plan


def store_plan(app, plan: dict[tuple, int], rng: random.Random) -> None:
    with app.extensions["mapsvc.store"].writing() as session:
        session.add_all(event(*key, rng) for key, n in plan.items() for _ in range(n))


def subsets(items):
    return [frozenset(c) for r in range(1, len(items) + 1) for c in itertools.combinations(items, r)]


def every_output(app) -> list:
    outputs = []
    with app.app_context():
        s = settings()
        zone = s.timezone
        for (first, last), categories, perpetrators in itertools.product(
            [("2026-04", "2026-04"), ("2026-04", "2026-05"), ("2026-05", "2026-05")],
            subsets(CATEGORIES),
            subsets(PERPETRATORS),
        ):
            selection = Selection(Month.parse(first), Month.parse(last), categories, perpetrators)
            evidence = gather(app.extensions["mapsvc.store"], Question(selection, 7), s)
            atoms = evidence.atoms
            districts = in_districts(assign_cells({a.cell for a in atoms}, evidence.districts))
            for keys in [
                (cell_at(7), by_month, by_category),
                (cell_at(6),),
                (cell_at(5), by_perpetrator),
                (districts, by_month),
                (by_month, by_perpetrator),
                (),
            ]:
                outputs.append(totals(atoms, *keys))
            outputs.append(time_breakdown(atoms, hour_of_day(zone), 24))
            outputs.append(time_breakdown(atoms, weekday(zone), 7, by_perpetrator))
    return outputs


@pytest.fixture
def stored(app):
    rng = random.Random(17)
    plan = atom_plan(rng)
    store_plan(app, plan, rng)
    with app.extensions["mapsvc.store"].writing() as session:
        replace_districts(session, DISTRICTS, datetime(2026, 6, 1, tzinfo=UTC))
    return plan, rng


def test_hidden_atoms_growing_below_the_minimum_change_no_output(app, stored):
    plan, rng = stored
    before = every_output(app)
    hidden = {key: n for key, n in plan.items() if 0 < n < 5}
    empty = [key for key, n in plan.items() if n == 0]
    assert len(hidden) > 20 and len(empty) > 5
    more = {key: rng.randint(1, 4 - n) for key, n in hidden.items() if n < 4}
    more.update({key: rng.randint(1, 4) for key in empty[:20]})
    store_plan(app, more, rng)

    assert every_output(app) == before


def test_a_published_atom_growing_does_change_the_outputs(app, stored):
    plan, rng = stored
    before = every_output(app)
    shown = next(key for key, n in plan.items() if n >= 5)
    store_plan(app, {shown: 1}, rng)

    assert every_output(app) != before


def test_pending_and_rejected_events_count_nowhere(app, stored):
    plan, rng = stored
    before = every_output(app)
    with app.extensions["mapsvc.store"].writing() as session:
        for status in ("pending", "rejected"):
            for key in list(plan)[:30]:
                for _ in range(6):
                    e = event(*key, rng)
                    e.status = status
                    session.add(e)

    assert every_output(app) == before
