"""One place reported again and again from one phone: what is published stops leaking (privacy.md §7).

Each place is reported N = 4, 40 and 400 times through the page's own ``publishedPoint`` (the path
the report flow takes), with the phone's list of published points cleared between places, as if
each place were reported from a phone of its own. The error of the centroid of everything a place
published must stay near a single draw's (median 363 m at r = 300 m) instead of shrinking with N.
The negative control draws fresh noise every time with the page's own sampler (the old behaviour
once a sticky cell had expired, and what averaging attacks exploit) and must fail the same check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mapsvc.core.fuzz import inverse_radial_cdf
from mapsvc.core.geodesy import geodesic_distance_m
from tests.browser.conftest import record
from tests.browser.test_fuzz_js import SEEDED_WORDS

#: Raids: r = 300 m at the default level ln 4.
EPSILON = math.log(4) / 300
SINGLE_DRAW_MEDIAN_M = float(inverse_radial_cdf(0.5, EPSILON))  # 363 m
#: The check: the median centroid error at every N stays above this share of a single draw's.
#: Reusing the first published point within theta = 4/epsilon keeps it near 0.9 (the kept point is
#: a draw that landed within theta; this seed: 365, 328 and 313 m); in a simulation of the same
#: mechanism over 40 seeds the lowest of the three medians was never below 281 m (0.77), its 5th
#: percentile 290 m. Fresh noise falls to about 0.55, 0.18 and 0.06 (200, 66 and 22 m).
PLATEAU_SHARE = 0.7
REPEATS = (4, 40, 400)
PLACES = 200
#: The word stream's seed (see test_fuzz_js.py): every run draws the same points.
SEED = 20261127

PHONE_PATH = """([places, n]) => {
  const F = window.mapsvcFuzz, raid = window.mapsvcMap.policies.raid;
  return places.map(([lat, lon]) => {
    localStorage.removeItem(F.PUBLISHED_KEY);
    return Array.from({length: n}, () => {
      const p = F.publishedPoint(lat, lon, "raid", raid);
      return [p.lat, p.lon];
    });
  });
}"""

FRESH_NOISE = """([places, n]) => {
  const F = window.mapsvcFuzz, eps = window.mapsvcMap.policies.raid.epsilon_per_m;
  return places.map(([lat, lon]) => Array.from({length: n}, () => {
    const d = F.drawDisplacement(eps), to = F.destination(lat, lon, d.bearing, d.distance);
    return [F.round4(to.lat), F.round4(to.lon)];
  }));
}"""


def places() -> np.ndarray:
    """Return PLACES true points spread over Bishkek, the same on every run."""
    rng = np.random.default_rng(11)
    return np.column_stack([rng.uniform(42.80, 42.92, PLACES), rng.uniform(74.50, 74.68, PLACES)]).round(6)


@pytest.fixture
def seeded(page, service):
    page.add_init_script(SEEDED_WORDS)
    page.goto(service.url + "/")
    page.wait_for_function("() => window.mapsvcFuzz && window.mapsvcMap")
    raid = page.evaluate("() => window.mapsvcMap.policies.raid")
    assert raid["epsilon_per_m"] == pytest.approx(EPSILON)
    assert raid["reuse_distance_m"] == pytest.approx(4 / EPSILON, abs=0.1)
    page.evaluate("seed => window.seededWords.seed(seed)", SEED)
    return page


def measure(page, script: str) -> dict[int, dict[str, float]]:
    """Report every place N times by ``script``; return the median centroid error and distinct points per N."""
    truth = places()
    figures = {}
    for n in REPEATS:
        published = np.array(page.evaluate(script, [truth.tolist(), n]))  # places x n x (lat, lon)
        centroid = published.mean(axis=1)
        errors = geodesic_distance_m(truth[:, 0], truth[:, 1], centroid[:, 0], centroid[:, 1])
        distinct = [len({(lat, lon) for lat, lon in place}) for place in published]
        figures[n] = {
            "median_centroid_error_m": round(float(np.median(errors)), 1),
            "mean_distinct_points": round(float(np.mean(distinct)), 2),
            "max_distinct_points": int(np.max(distinct)),
        }
    return figures


def plateaus(figures: dict[int, dict[str, float]]) -> bool:
    """Whether the median centroid error stays near a single draw's at every N."""
    return all(f["median_centroid_error_m"] >= PLATEAU_SHARE * SINGLE_DRAW_MEDIAN_M for f in figures.values())


def test_repeated_reports_from_the_phone_do_not_average_out(seeded):
    figures = measure(seeded, PHONE_PATH)
    record("phone-repeats", {"single_draw_median_m": round(SINGLE_DRAW_MEDIAN_M, 1), "by_repeats": figures})

    assert plateaus(figures), figures
    # Fresh draws stop: a place publishes a point, plus one more each time a draw fell beyond
    # theta (9 % of draws), whatever N is.
    assert figures[400]["mean_distinct_points"] <= 1.5, figures
    assert figures[400]["mean_distinct_points"] == pytest.approx(figures[40]["mean_distinct_points"], abs=0.05)


def test_the_check_fails_fresh_noise_for_every_report(seeded):
    """Negative control: with fresh noise each time the centroid closes in on the truth."""
    figures = measure(seeded, FRESH_NOISE)
    record("phone-repeats-fresh-noise", {"single_draw_median_m": round(SINGLE_DRAW_MEDIAN_M, 1), "by_repeats": figures})

    assert not plateaus(figures), figures
    assert figures[400]["median_centroid_error_m"] < 0.1 * SINGLE_DRAW_MEDIAN_M, figures
    assert figures[400]["mean_distinct_points"] > 300, figures
