import math
import random
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from mapsvc.core.decay import (
    DecayedSum,
    decay_factor,
    decay_rate,
    decayed_value,
    floor_to_bucket,
    from_epoch,
    to_epoch,
    weight,
)

HOUR = 3600
DAY = 24 * HOUR
HALF_LIFE = 3 * HOUR
RATE = decay_rate(HALF_LIFE)
START = datetime(2021, 1, 1, tzinfo=UTC).timestamp()
FIVE_YEARS = 5 * 365 * DAY


def direct_sum(times, now, half_life=HALF_LIFE, amounts=None):
    times = np.asarray(times, dtype=float)
    amounts = np.ones_like(times) if amounts is None else np.asarray(amounts, dtype=float)
    return float(np.sum(amounts * np.exp2(-(now - times) / half_life)))


def summed(times, landmark=None, rate=RATE):
    total = DecayedSum.start(times[0] if landmark is None else landmark)
    for t in times:
        total = total.add(t, rate)
    return total


# --- buckets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "bucket_s", "start"),
    [
        (datetime(2026, 6, 15, 22, 0, tzinfo=UTC), HOUR, datetime(2026, 6, 15, 22, 0, tzinfo=UTC)),
        (datetime(2026, 6, 15, 22, 0, 0, 1, tzinfo=UTC), HOUR, datetime(2026, 6, 15, 22, 0, tzinfo=UTC)),
        (datetime(2026, 6, 15, 22, 59, 59, 999999, tzinfo=UTC), HOUR, datetime(2026, 6, 15, 22, 0, tzinfo=UTC)),
        (datetime(2026, 6, 15, 23, 0, tzinfo=UTC), HOUR, datetime(2026, 6, 15, 23, 0, tzinfo=UTC)),
        (datetime(2026, 6, 15, 0, 0, tzinfo=UTC), DAY, datetime(2026, 6, 15, tzinfo=UTC)),
        (datetime(2026, 6, 15, 23, 59, 59, tzinfo=UTC), DAY, datetime(2026, 6, 15, tzinfo=UTC)),
        (datetime(2026, 6, 16, 0, 0, tzinfo=UTC), DAY, datetime(2026, 6, 16, tzinfo=UTC)),
        (datetime(2024, 2, 29, 12, 0, tzinfo=UTC), DAY, datetime(2024, 2, 29, tzinfo=UTC)),
        # Before 1970 the epoch seconds are negative: floor, do not truncate towards zero.
        (datetime(1969, 12, 31, 22, 59, 59, 500000, tzinfo=UTC), HOUR, datetime(1969, 12, 31, 22, tzinfo=UTC)),
    ],
)
def test_floor_to_bucket_in_utc(moment, bucket_s, start):
    assert floor_to_bucket(moment, bucket_s) == start


@pytest.mark.parametrize(
    ("moment", "bucket_s", "start"),
    [
        # 01:30 at +03:00 is 22:30 UTC the day before.
        (datetime(2026, 6, 16, 1, 30, tzinfo=timezone(timedelta(hours=3))), HOUR, datetime(2026, 6, 15, 22, 0)),
        (datetime(2026, 6, 16, 1, 30, tzinfo=timezone(timedelta(hours=3))), DAY, datetime(2026, 6, 15)),
        # 20:00 at -05:00 is 01:00 UTC the next day.
        (datetime(2026, 6, 15, 20, 0, tzinfo=timezone(timedelta(hours=-5))), DAY, datetime(2026, 6, 16)),
        # Half-hour zones do not give half-hour buckets.
        (datetime(2026, 6, 15, 10, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))), HOUR, datetime(2026, 6, 15, 4)),
    ],
)
def test_floor_to_bucket_uses_utc_boundaries_for_other_zones(moment, bucket_s, start):
    floored = floor_to_bucket(moment, bucket_s)
    assert floored.utcoffset() == timedelta(0)
    assert floored.replace(tzinfo=None) == start


@pytest.mark.parametrize("bucket_s", [HOUR, DAY])
def test_bucket_holds_the_moment(bucket_s):
    rng = random.Random(bucket_s)
    for _ in range(500):
        moment = from_epoch(rng.uniform(-10 * 365 * DAY, 60 * 365 * DAY))
        floored = floor_to_bucket(moment, bucket_s)
        assert floored <= moment < floored + timedelta(seconds=bucket_s)
        assert to_epoch(floored) % bucket_s == 0


def test_floor_to_bucket_rejects_naive_datetimes():
    with pytest.raises(ValueError):
        floor_to_bucket(datetime(2026, 6, 15, 22, 30), HOUR)


# --- weights -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("half_lives", "expected"), [(0, 1.0), (1, 0.5), (2, 0.25), (3, 0.125), (0.5, 2**-0.5)])
@pytest.mark.parametrize("half_life_s", [2 * HOUR, 3 * DAY, 14 * DAY])
def test_weight_halves_every_half_life(half_life_s, half_lives, expected):
    assert weight(half_lives * half_life_s, half_life_s) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("age_s", [-1e-6, -1.0, -HOUR, -365 * DAY])
def test_weight_of_a_future_event_is_zero(age_s):
    assert weight(age_s, HALF_LIFE) == 0.0


@pytest.mark.parametrize(("half_lives", "expected"), [(-2, 4.0), (-1, 2.0), (0, 1.0), (1, 0.5)])
def test_the_decay_factor_is_the_weight_for_any_age(half_lives, expected):
    assert decay_factor(half_lives * HALF_LIFE, HALF_LIFE) == expected
    assert weight(half_lives * HALF_LIFE, HALF_LIFE) == (expected if half_lives >= 0 else 0.0)


@pytest.mark.parametrize(("half_lives", "visible"), [(4.3, True), (4.32, True), (4.33, False), (5.0, False)])
def test_event_is_hidden_below_005_after_about_432_half_lives(half_lives, visible):
    assert (weight(half_lives * HALF_LIFE, HALF_LIFE) >= 0.05) is visible


def test_weight_is_005_at_log2_20_half_lives():
    assert weight(math.log2(20) * HALF_LIFE, HALF_LIFE) == pytest.approx(0.05, rel=1e-12)


def test_decay_rate_is_ln2_over_half_life():
    assert decay_rate(HALF_LIFE) * HALF_LIFE == pytest.approx(math.log(2), rel=1e-15)


# --- forward-decayed sums ----------------------------------------------------------------------


def five_years_of_events(seed):
    """Bursts of reports separated by quiet weeks and months, over five years, in time order."""
    rng = random.Random(seed)
    times, t = [], START
    while t < START + FIVE_YEARS:
        t += rng.choice([rng.uniform(0, 2 * HOUR), rng.uniform(0, 3 * DAY), rng.uniform(0, 120 * DAY)])
        times.extend(sorted(t + rng.uniform(0, 6 * HOUR) for _ in range(rng.randint(1, 8))))
    return times


@pytest.mark.parametrize("seed", [1, 2])
def test_forward_decay_equals_direct_sum_over_five_years(seed):
    times = five_years_of_events(seed)
    # Without moving the landmark, exp(lambda * (t - L)) would overflow float64 (limit ~ e^709).
    assert RATE * (times[-1] - times[0]) > 5000
    rng = random.Random(seed)
    total = DecayedSum.start(times[0])
    checked = 0
    for i, t in enumerate(times):
        total = total.add(t, RATE)
        for now in (t, t + rng.uniform(0, 10 * HOUR), t + rng.uniform(0, 5 * DAY)):
            assert total.value_at(now, RATE) == pytest.approx(direct_sum(times[: i + 1], now), rel=1e-9)
            checked += 1
    assert checked > 1000


def test_forward_decay_landmark_moves_and_state_stays_finite():
    times = five_years_of_events(3)
    total = summed(times)
    assert total.landmark > times[0]
    assert math.isfinite(total.s)
    assert total.value_at(times[-1], RATE) >= 1.0


@pytest.mark.parametrize("half_life_s", [2 * HOUR, 3 * DAY, 14 * DAY])
def test_forward_decay_equals_direct_sum_for_other_half_lives(half_life_s):
    times = five_years_of_events(4)
    rate = decay_rate(half_life_s)
    now = times[-1] + half_life_s
    assert summed(times, rate=rate).value_at(now, rate) == pytest.approx(direct_sum(times, now, half_life_s), rel=1e-9)


def test_empty_sum_is_zero():
    assert DecayedSum.start(START).value_at(START + DAY, RATE) == 0.0


def test_sum_is_immutable():
    total = DecayedSum.start(START)
    total.add(START, RATE)
    assert total.value_at(START, RATE) == 0.0


@pytest.mark.parametrize("removed_index", [0, 3, 5])
def test_removal_restores_the_previous_value(removed_index):
    times = [START + k * HOUR for k in range(6)]
    now = times[-1] + 2 * HOUR
    kept = [t for k, t in enumerate(times) if k != removed_index]
    removed = summed(times, landmark=START).add(times[removed_index], RATE, amount=-1.0)
    assert removed.value_at(now, RATE) == pytest.approx(summed(kept, landmark=START).value_at(now, RATE), rel=1e-9)


def test_removal_after_a_landmark_move_restores_the_previous_value():
    times = five_years_of_events(5)[:200]
    before = summed(times)
    # The first event lies far before the landmark now; then undo the last one.
    after = before.add(times[-1] + 30 * DAY, RATE).add(times[-1] + 30 * DAY, RATE, amount=-1.0)
    now = times[-1] + 30 * DAY
    assert after.landmark > before.landmark
    assert after.value_at(now, RATE) == pytest.approx(before.value_at(now, RATE), rel=1e-9)


def test_removing_the_only_event_gives_exactly_zero():
    total = DecayedSum.start(START).add(START + 5 * HOUR, RATE).add(START + 5 * HOUR, RATE, amount=-1.0)
    assert total.value_at(START + 6 * HOUR, RATE) == 0.0


@pytest.mark.parametrize("hours_late", [1.0, 7.5, 100.0])
def test_late_event_before_the_landmark_gets_its_own_weight(hours_late):
    landmark = START + 10 * DAY
    event = landmark - hours_late * HOUR
    now = landmark + 2 * HOUR
    total = DecayedSum.start(landmark).add(event, RATE)
    assert total.value_at(now, RATE) == pytest.approx(weight(now - event, HALF_LIFE), rel=1e-9)


def test_late_events_in_any_order_give_the_direct_sum():
    times = five_years_of_events(6)[-400:]
    shuffled = list(times)
    random.Random(6).shuffle(shuffled)
    now = max(times) + HOUR
    total = DecayedSum.start(shuffled[0])
    for t in shuffled:
        total = total.add(t, RATE)
    assert total.value_at(now, RATE) == pytest.approx(direct_sum(times, now), rel=1e-9)


def test_event_too_old_to_count_adds_nothing():
    total = summed([START + k * HOUR for k in range(3)])
    late = total.add(START - 4 * 365 * DAY, RATE)
    assert late.value_at(START + 3 * HOUR, RATE) == total.value_at(START + 3 * HOUR, RATE)


def test_the_stores_decayed_value_is_the_sums_value():
    rate = decay_rate(HALF_LIFE)
    total = DecayedSum.start(0.0).add(HOUR, rate).add(3 * HOUR, rate)

    for now in (3 * HOUR, DAY, 40 * DAY):
        assert decayed_value(total.s, total.landmark, now, rate) == total.value_at(now, rate)
