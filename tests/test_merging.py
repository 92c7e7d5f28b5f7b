"""Repeated reports of one place: merging defeats averaging (privacy.md §1 and §5)."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from mapsvc.core.fuzz import fuzz_points, geodesic_distance_m, radial_cdf
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.events import record_report
from mapsvc.web.reporting import publish, submit
from tests.conftest import BISHKEK, NOW
from tests.helpers import HOME_CELL, build_app, cell_centre, stored_counts, stored_events

#: Reports of one place in one bucket, as a bot or an importer might send them.
REPEATS = 200

#: The statistical check: many distinct true places, each reported several times in one bucket.
PLACES = 1000
REPORTS_PER_PLACE = 10

#: Where true places are drawn: well inside the Bishkek area, so no published point is clamped.
INNER = (74.49, 42.83, 74.68, 42.90)


def _submit_repeats(app, category: str, count: int):
    """Submit ``count`` reports of BISHKEK in the current bucket; return (published, receipt) pairs."""
    data = {"category": category, "lat": BISHKEK[0], "lon": BISHKEK[1]}
    with app.app_context():
        return [submit(data, settings(), get_store()) for _ in range(count)]


def test_repeated_reports_never_move_a_published_point(app):
    results = _submit_repeats(app, "checkpoint", REPEATS)

    created = {r.event_id: (p.lat, p.lon) for p, r in results if not r.merged}
    assert {e.public_id: (e.lat, e.lon) for e in stored_events(app)} == created


def test_repeated_reports_are_all_counted(app):
    _submit_repeats(app, "checkpoint", REPEATS)

    assert sum(e.corroborations for e in stored_events(app)) == REPEATS
    assert stored_counts(app)[1] == REPEATS


def test_merged_reports_join_an_existing_event(app):
    results = _submit_repeats(app, "checkpoint", REPEATS)

    events = {e.public_id for e in stored_events(app)}
    merged = [r for _, r in results if r.merged]
    assert merged, "no report of the same place merged"
    assert all(r.event_id in events for r in merged)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="design gap: a server-fuzzed repeat whose draw lands beyond the merge distance "
    "(2 x mean noise) of the first draw publishes a further point; 200 repeats give ~6 events",
)
def test_repeated_reports_of_one_place_publish_one_event(app):
    _submit_repeats(app, "checkpoint", REPEATS)

    assert len(stored_events(app)) == 1


def test_device_fuzzed_repeats_publish_one_event(app):
    sticky = cell_centre(HOME_CELL)  # the device reuses its earlier fuzzed point
    data = {"category": "checkpoint", "lat": sticky[0], "lon": sticky[1], "fuzzed_on_device": True}
    with app.app_context():
        for _ in range(REPEATS):
            submit(data, settings(), get_store())

    [event] = stored_events(app)
    assert (event.lat, event.lon) == sticky
    assert event.corroborations == REPEATS


# Two reports at the same sticky device point; (first, second) as (category, occurred_at).
SEPARATE = {
    "next hour": (("checkpoint", "2026-06-15T21:05:00Z"), ("checkpoint", "2026-06-15T22:05:00Z")),
    "same minute, other hour": (("checkpoint", "2026-06-15T21:59:59Z"), ("checkpoint", "2026-06-15T22:00:00Z")),
    "attack, next UTC day": (("attack", "2026-06-14T23:30:00Z"), ("attack", "2026-06-15T00:30:00Z")),
    "other category": (("checkpoint", "2026-06-15T22:05:00Z"), ("patrol", "2026-06-15T22:05:00Z")),
    "raid and detention": (("raid", "2026-06-15T22:05:00Z"), ("detention", "2026-06-15T22:05:00Z")),
}
TOGETHER = {
    "same hour": (("checkpoint", "2026-06-15T22:01:00Z"), ("checkpoint", "2026-06-15T22:29:00Z")),
    "attack, same UTC day": (("attack", "2026-06-15T00:30:00Z"), ("attack", "2026-06-15T22:00:00Z")),
}


def _two_device_reports(app, first, second):
    point = cell_centre(HOME_CELL)
    with app.app_context():
        return [
            submit(
                {"category": c, "lat": point[0], "lon": point[1], "occurred_at": t, "fuzzed_on_device": True},
                settings(),
                get_store(),
            )[1]
            for c, t in (first, second)
        ]


@pytest.mark.parametrize(("first", "second"), list(SEPARATE.values()), ids=list(SEPARATE))
def test_reports_in_other_buckets_or_categories_do_not_merge(app, first, second):
    receipts = _two_device_reports(app, first, second)

    assert [r.merged for r in receipts] == [False, False]
    assert receipts[0].event_id != receipts[1].event_id
    assert stored_counts(app) == (2, 2)


@pytest.mark.parametrize(("first", "second"), list(TOGETHER.values()), ids=list(TOGETHER))
def test_reports_in_one_bucket_and_category_merge(app, first, second):
    receipts = _two_device_reports(app, first, second)

    assert [r.merged for r in receipts] == [False, True]
    assert receipts[0].event_id == receipts[1].event_id
    assert stored_counts(app) == (1, 2)


def test_far_apart_reports_in_one_bucket_do_not_merge(app):
    merge_distance = app.extensions["mapsvc.settings"].policies["checkpoint"].merge_distance_m()
    here = cell_centre(HOME_CELL)
    there = (round(here[0] + 1.5 * merge_distance / 111_000, 4), here[1])  # north, beyond the distance
    with app.app_context():
        receipts = [
            submit(
                {"category": "checkpoint", "lat": lat, "lon": lon, "fuzzed_on_device": True}, settings(), get_store()
            )[1]
            for lat, lon in (here, there)
        ]

    assert [r.merged for r in receipts] == [False, False]


# --- the statistical property -----------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """What many places' repeated raid reports published, next to their true points."""

    truths: np.ndarray  # (PLACES, 2) lat, lon
    first: np.ndarray  # (PLACES, 2) the point each place's first report published
    estimate: np.ndarray  # (PLACES, 2) corroboration-weighted centre of each place's events
    events: np.ndarray  # (PLACES,) events published per place
    epsilon: float


def _true_places(rng: np.random.Generator) -> np.ndarray:
    min_lon, min_lat, max_lon, max_lat = INNER
    return np.column_stack([rng.uniform(min_lat, max_lat, PLACES), rng.uniform(min_lon, max_lon, PLACES)])


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, migrated_template: Path) -> Published:
    """Report each true place REPORTS_PER_PLACE times, each place in its own hour bucket."""
    app = build_app(tmp_path_factory.mktemp("merging"), migrated_template, seed=649)
    truths = _true_places(np.random.default_rng(2008))
    first = np.empty_like(truths)
    with app.app_context():
        s, store = settings(), get_store()
        policy = s.policies["raid"]
        for i, (lat, lon) in enumerate(truths):
            occurred = (NOW - timedelta(hours=PLACES - i)).isoformat()  # oldest first
            data = {"category": "raid", "lat": float(lat), "lon": float(lon), "occurred_at": occurred}
            with store.writing() as session:
                for k in range(REPORTS_PER_PLACE):
                    report = publish(data, s)
                    record_report(session, report, policy, s.level, s.heat_resolution)
                    if k == 0:
                        first[i] = (report.lat, report.lon)
        epsilon = policy.epsilon(s.level)
    by_bucket: dict[datetime, list[tuple[float, float, int]]] = defaultdict(list)
    for e in stored_events(app):
        by_bucket[e.bucket_start].append((e.lat, e.lon, e.corroborations))
    app.extensions["mapsvc.store"].dispose()
    buckets = sorted(by_bucket)
    assert len(buckets) == PLACES and buckets[0] < buckets[-1] <= NOW
    estimate = np.empty_like(truths)
    events = np.empty(PLACES, dtype=int)
    for i, bucket in enumerate(buckets):
        group = np.array(by_bucket[bucket])
        estimate[i] = np.average(group[:, :2], axis=0, weights=group[:, 2])
        events[i] = len(group)
    return Published(truths, first, estimate, events, epsilon)


def _errors(truths: np.ndarray, points: np.ndarray) -> np.ndarray:
    return geodesic_distance_m(truths[:, 0], truths[:, 1], points[:, 0], points[:, 1])


def _assert_single_draw(errors: np.ndarray, epsilon: float) -> None:
    """The errors follow C(ρ): KS against the formula, and the documented median (363 m at r=300)."""
    result = stats.kstest(errors, lambda rho: radial_cdf(rho, epsilon))
    assert result.pvalue > 1e-3, f"KS p={result.pvalue:.2g}, median error {np.median(errors):.0f} m"
    assert np.median(errors) == pytest.approx(363, rel=0.15)


@pytest.mark.slow
def test_first_published_point_keeps_the_single_draw_error(published):
    _assert_single_draw(_errors(published.truths, published.first), published.epsilon)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="design gap: repeats beyond the merge distance publish more draws of the same place; "
    "with 10 reports a place the corroboration-weighted centre of its events lies a median ~220 m "
    "from the truth instead of 363 m",
)
def test_what_repeats_publish_keeps_the_single_draw_error(published):
    _assert_single_draw(_errors(published.truths, published.estimate), published.epsilon)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True, raises=AssertionError, reason="design gap: see test_repeated_reports_of_one_place_publish_one_event"
)
def test_each_place_publishes_one_event(published):
    assert np.all(published.events == 1)


def test_single_draw_check_rejects_averaged_points(published):
    """The check has power: the centroid of each place's fresh draws, as a naive server would publish, fails it."""
    rng = random.Random(32)
    lats, lons = fuzz_points(
        np.repeat(published.truths[:, 0], REPORTS_PER_PLACE),
        np.repeat(published.truths[:, 1], REPORTS_PER_PLACE),
        published.epsilon,
        rng,
    )
    centroids = np.column_stack([lats.reshape(PLACES, -1).mean(axis=1), lons.reshape(PLACES, -1).mean(axis=1)])

    with pytest.raises(AssertionError):
        _assert_single_draw(_errors(published.truths, centroids), published.epsilon)


# --- the organisation's knob: a larger merge distance for integrations that repeat points ----


def _single_event_places(app, places: int, repeats: int) -> int:
    """Report ``places`` true points ``repeats`` times each, one hour bucket per place."""
    rng = np.random.default_rng(6)
    min_lon, min_lat, max_lon, max_lat = INNER
    with app.app_context():
        s, store = settings(), get_store()
        for i in range(places):
            data = {
                "category": "raid",
                "lat": float(rng.uniform(min_lat, max_lat)),
                "lon": float(rng.uniform(min_lon, max_lon)),
                "occurred_at": (NOW - timedelta(hours=i + 1)).isoformat(),
            }
            with store.writing() as session:
                for _ in range(repeats):
                    report = publish(data, s)
                    record_report(session, report, s.policies["raid"], s.level, s.heat_resolution)
    per_bucket: dict[datetime, int] = defaultdict(int)
    for event in stored_events(app):
        per_bucket[event.bucket_start] += 1
    assert len(per_bucket) == places
    return sum(1 for count in per_bucket.values() if count == 1)


@pytest.mark.parametrize(("factor", "low", "high"), [(2.0, 0, 30), (6.0, 55, 60)])
def test_merge_factor_sets_how_often_repeats_stay_one_event(app_config, factor, low, high):
    # Simulation: 20 repeats stay one event for ~7% of places at 2 x mean noise, ~99% at 6 x.
    app_config["CATEGORY_OVERRIDES"] = {"raid": {"merge_factor": factor}}
    from mapsvc import create_app

    app = create_app(app_config)
    try:
        single = _single_event_places(app, places=60, repeats=20)
        assert low <= single <= high
    finally:
        app.extensions["mapsvc.store"].dispose()
