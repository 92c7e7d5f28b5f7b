"""Heat stays exact over years of history: landmark rescaling in the stored series."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from mapsvc.core.decay import floor_to_bucket, to_epoch, weight
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.events import PublishedReport, record_report
from mapsvc.store.heat import HeatQuery, read_atoms
from mapsvc.store.models import HeatStep
from tests.conftest import NOW
from tests.helpers import HOME_CELL, cell_centre

YEARS = 5


def _five_years_in_one_cell(app, category: str) -> list:
    """Store events in one cell every few days over five years; return their bucket starts."""
    rng = random.Random(5)
    lat, lon = cell_centre(HOME_CELL)
    buckets = []
    with app.app_context():
        s, store = settings(), get_store()
        policy = s.policies[category]
        moment = NOW - timedelta(days=365 * YEARS)
        with store.writing() as session:
            while moment < NOW:
                bucket = floor_to_bucket(moment, policy.bucket_s)
                if not buckets or bucket != buckets[-1]:  # one event a bucket: same-bucket reports merge
                    report = PublishedReport(category, "police", lat, lon, bucket)
                    record_report(session, report, policy, s.level, s.heat_resolution)
                    buckets.append(bucket)
                moment += timedelta(days=rng.uniform(0.2, 12), hours=rng.uniform(0, 23))
    return buckets


@pytest.mark.parametrize("category", ["checkpoint", "raid", "attack"])
def test_heat_over_five_years_equals_the_direct_sum(app, category):
    buckets = _five_years_in_one_cell(app, category)
    policy = app.extensions["mapsvc.settings"].policies[category]
    moments = [NOW - timedelta(days=d, hours=h) for d, h in [(0, 0), (3, 5), (400, 1), (900, 0), (1500, 7)]]
    with app.app_context(), get_store().reader() as session:
        rescaled = session.query(HeatStep.landmark_s).distinct().count()
        for at in moments:
            [atom] = read_atoms(session, HeatQuery(at, (74.0, 42.0, 75.0, 43.5), [policy], 0.05)) or [None]
            seen = [b for b in buckets if b <= at]
            direct = sum(weight(to_epoch(at) - to_epoch(b), policy.half_life_s) for b in seen)
            live = sum(1 for b in seen if to_epoch(at) - to_epoch(b) <= policy.horizon_s())
            if live == 0:
                assert atom is None
                continue
            assert atom.live_events == live
            assert atom.intensity == pytest.approx(direct, rel=1e-9, abs=1e-12)
    # With a 3-hour half-life, five years are ~10,000 e-foldings: the landmark must have moved.
    assert category != "checkpoint" or rescaled > 100
