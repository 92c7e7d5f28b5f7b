import math
import random
import secrets

import numpy as np
import pytest
from pyproj import Geod
from scipy import integrate, stats

from mapsvc.core.fuzz import (
    draw_displacements,
    fuzz_point,
    fuzz_points,
    inverse_radial_cdf,
    radial_cdf,
    system_random,
)
from mapsvc.core.geodesy import geodesic_distance_m, move_geodesic

#: privacy.md §1: odds change at most 4x within the protected radius.
LEVEL = math.log(4)

#: Reject a null hypothesis below this p-value; a control must fall below it.
ALPHA = 0.001

#: Two-sided normal quantile for ALPHA.
Z_ALPHA = stats.norm.isf(ALPHA / 2)

#: One degree of latitude/longitude in metres at the equator, as naive code would use it.
NAIVE_M_PER_DEGREE = 111_320.0

GEOD = Geod(ellps="WGS84")
LATITUDES = (0.0, 45.0, 60.0)
LON = 30.0


def eps_for(radius_m):
    return LEVEL / radius_m


def seed_for(*parts):
    return int(sum(abs(p) * 1000**i for i, p in enumerate(parts)))


def true_points(lat, n):
    return np.full(n, lat), np.full(n, LON)


def polar_offsets(lat, lon, lat2, lon2):
    """Geodesic distance (m) and forward azimuth (degrees in [0, 360)) from truth to output."""
    az, _, _ = GEOD.inv(lon, lat, lon2, lat2)
    return geodesic_distance_m(lat, lon, lat2, lon2), np.mod(az, 360.0)


def north_east_offsets(lat, lon, lat2, lon2):
    dist, az = polar_offsets(lat, lon, lat2, lon2)
    return dist * np.cos(np.radians(az)), dist * np.sin(np.radians(az))


def fuzzed_sample(lat, radius_m, n, seed):
    lats, lons = true_points(lat, n)
    return lats, lons, *fuzz_points(lats, lons, eps_for(radius_m), random.Random(seed))


def naive_degrees_sample(lat, radius_m, n, seed):
    """The mistake privacy.md warns of: metres turned into degrees as if the Earth were flat."""
    lats, lons = true_points(lat, n)
    bearings, distances = draw_displacements(n, eps_for(radius_m), random.Random(seed))
    theta = np.radians(bearings)
    lat2 = lats + distances * np.cos(theta) / NAIVE_M_PER_DEGREE
    lon2 = lons + distances * np.sin(theta) / NAIVE_M_PER_DEGREE
    return lats, lons, lat2, lon2


def mercator_sample(lat, radius_m, n, seed):
    """The other mistake: the displacement taken in Web-Mercator metres."""
    lats, lons = true_points(lat, n)
    bearings, distances = draw_displacements(n, eps_for(radius_m), random.Random(seed))
    ground = distances * np.cos(np.radians(lat))
    return lats, lons, *move_geodesic(lats, lons, bearings, ground)


def donut_sample(lat, radius_m, n, seed, min_distance_m):
    """Re-draw until the output is at least ``min_distance_m`` away (an exclusion zone)."""
    epsilon = eps_for(radius_m)
    rng = random.Random(seed)
    floor = float(radial_cdf(min_distance_m, epsilon))
    p = np.array([floor + (1.0 - floor) * rng.random() for _ in range(n)])
    bearings = np.array([360.0 * rng.random() for _ in range(n)])
    lats, lons = true_points(lat, n)
    return lats, lons, *move_geodesic(lats, lons, bearings, inverse_radial_cdf(p, epsilon))


def radial_ks_pvalue(sample, radius_m):
    lats, lons, lat2, lon2 = sample
    distances = geodesic_distance_m(lats, lons, lat2, lon2)
    return stats.kstest(distances, lambda rho: radial_cdf(rho, eps_for(radius_m))).pvalue


def bearing_ks_pvalue(sample):
    _, azimuths = polar_offsets(*sample)
    return stats.kstest(azimuths, stats.uniform(loc=0.0, scale=360.0).cdf).pvalue


def north_east_ks_pvalue(sample):
    north, east = north_east_offsets(*sample)
    half = north.size // 2
    # Independent halves: |north| from one, |east| from the other.
    return stats.ks_2samp(np.abs(north[:half]), np.abs(east[half:])).pvalue


# --- the radial CDF and its inverse ------------------------------------------------------------


@pytest.mark.parametrize("radius_m", [150, 300, 1000])
def test_radial_cdf_is_the_gamma_2_distribution(radius_m):
    epsilon = eps_for(radius_m)
    rho = np.linspace(0.0, 20.0 / epsilon, 401)
    expected = stats.gamma(a=2, scale=1.0 / epsilon).cdf(rho)
    np.testing.assert_allclose(radial_cdf(rho, epsilon), expected, rtol=1e-12, atol=1e-15)


def test_radial_cdf_is_zero_for_negative_distances():
    np.testing.assert_array_equal(radial_cdf([-100.0, -1e-9, 0.0], 0.01), [0.0, 0.0, 0.0])


def test_inverse_radial_cdf_of_zero_is_zero():
    assert inverse_radial_cdf(0.0, 0.01) == 0.0


class ConstantSource:
    def __init__(self, value):
        self.value = value

    def random(self):
        return self.value


def test_a_zero_uniform_draws_distance_zero_not_nan():
    _, distances = draw_displacements(3, eps_for(300), ConstantSource(0.0))
    np.testing.assert_array_equal(distances, [0.0, 0.0, 0.0])


def test_radial_cdf_undoes_inverse_radial_cdf():
    p = np.concatenate([np.logspace(-8, -1, 50), 1.0 - np.logspace(-1, -9, 50)])
    np.testing.assert_allclose(radial_cdf(inverse_radial_cdf(p, 0.01), 0.01), p, rtol=0, atol=1e-13)


def test_inverse_radial_cdf_undoes_radial_cdf():
    epsilon = 0.01
    rho = np.logspace(-2, math.log10(20.0), 200) / epsilon
    np.testing.assert_allclose(inverse_radial_cdf(radial_cdf(rho, epsilon), epsilon), rho, rtol=1e-9)


@pytest.mark.parametrize("p", [-1e-12, -0.5, 1.0, 1.5, math.nan, math.inf])
def test_inverse_radial_cdf_rejects_p_outside_unit_interval(p):
    with pytest.raises(ValueError):
        inverse_radial_cdf([0.5, p], 0.01)


@pytest.mark.parametrize("epsilon", [0.0, -0.01, math.nan, math.inf])
@pytest.mark.parametrize(
    "call",
    [
        lambda eps: radial_cdf(100.0, eps),
        lambda eps: inverse_radial_cdf(0.5, eps),
        lambda eps: draw_displacements(10, eps, random.Random(1)),
        lambda eps: fuzz_point(45.0, 30.0, eps, random.Random(1)),
    ],
    ids=["radial_cdf", "inverse_radial_cdf", "draw_displacements", "fuzz_point"],
)
def test_non_positive_or_non_finite_epsilon_is_rejected(call, epsilon):
    with pytest.raises(ValueError):
        call(epsilon)


# --- privacy.md's table -----------------------------------------------------------------------

#: privacy.md §1: r, epsilon per metre, mean, median, p90, p99 (metres, rounded as printed).
TABLE = [
    (150, 0.00924, 216, 182, 421, 718),
    (300, 0.00462, 433, 363, 842, 1437),
    (1000, 0.00139, 1443, 1211, 2806, 4789),
]
QUANTILES = (0.5, 0.9, 0.99)


@pytest.mark.parametrize(("radius_m", "epsilon", "mean", "median", "p90", "p99"), TABLE)
def test_table_epsilon_is_ln4_over_radius(radius_m, epsilon, mean, median, p90, p99):
    assert eps_for(radius_m) == pytest.approx(epsilon, abs=5e-6)


@pytest.mark.parametrize(("radius_m", "epsilon", "mean", "median", "p90", "p99"), TABLE)
def test_table_mean_is_the_mean_of_the_radial_distribution(radius_m, epsilon, mean, median, p90, p99):
    eps = eps_for(radius_m)
    # E[rho] = integral of the survival function 1 - C.
    integral, _ = integrate.quad(lambda rho: 1.0 - float(radial_cdf(rho, eps)), 0.0, 60.0 / eps, limit=200)
    assert abs(integral - 2.0 / eps) < 1e-6 * integral
    assert abs(integral - mean) <= 0.5


@pytest.mark.parametrize(("radius_m", "epsilon", "mean", "median", "p90", "p99"), TABLE)
def test_table_quantiles_match_inverse_radial_cdf(radius_m, epsilon, mean, median, p90, p99):
    quantiles = inverse_radial_cdf(QUANTILES, eps_for(radius_m))
    assert np.all(np.abs(quantiles - [median, p90, p99]) <= 0.5)


# privacy.md prints 8.3% for r = 150 m, which its own C(rho) does not give: C(50) = 7.9% there.
@pytest.mark.parametrize(("radius_m", "percent"), [(300, 2.3), (1000, 0.2)])
def test_table_share_within_50_m_matches_radial_cdf(radius_m, percent):
    assert 100.0 * float(radial_cdf(50.0, eps_for(radius_m))) == pytest.approx(percent, abs=0.05)


def quantile_standard_error(p, rho, epsilon, n):
    density = epsilon**2 * rho * math.exp(-epsilon * rho)
    return math.sqrt(p * (1.0 - p) / n) / density


@pytest.mark.parametrize(("radius_m", "epsilon", "mean", "median", "p90", "p99"), TABLE)
def test_sampled_displacements_match_the_table(radius_m, epsilon, mean, median, p90, p99):
    n, z = 50_000, 4.0
    eps = eps_for(radius_m)
    _, distances = draw_displacements(n, eps, random.Random(seed_for(radius_m, 7)))
    # Var(rho) = 2 / eps^2 for Gamma(2, eps); the table is rounded to the metre.
    assert abs(distances.mean() - mean) <= z * math.sqrt(2.0 / n) / eps + 0.5
    for p, printed in zip(QUANTILES, (median, p90, p99), strict=True):
        tolerance = z * quantile_standard_error(p, printed, eps, n) + 0.5
        assert abs(np.quantile(distances, p) - printed) <= tolerance, p


# --- radial distance, measured geodesically ---------------------------------------------------


@pytest.mark.parametrize("radius_m", [150, 1000])
@pytest.mark.parametrize("lat", LATITUDES)
def test_geodesic_displacement_follows_radial_cdf(lat, radius_m):
    sample = fuzzed_sample(lat, radius_m, 20_000, seed_for(lat, radius_m, 1))
    assert radial_ks_pvalue(sample, radius_m) > ALPHA


def test_radial_ks_rejects_a_donut():
    sample = donut_sample(45.0, 300, 20_000, seed=11, min_distance_m=0.5 / eps_for(300))
    assert radial_ks_pvalue(sample, 300) < ALPHA


@pytest.mark.parametrize("lat", [45.0, 60.0])
def test_radial_ks_rejects_mercator_metres(lat):
    sample = mercator_sample(lat, 300, 20_000, seed=seed_for(lat, 12))
    assert radial_ks_pvalue(sample, 300) < ALPHA


# --- bearing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("lat", LATITUDES)
def test_geodesic_bearing_is_uniform(lat):
    sample = fuzzed_sample(lat, 300, 20_000, seed_for(lat, 2))
    assert bearing_ks_pvalue(sample) > ALPHA


def test_bearing_ks_rejects_naive_degrees_at_60():
    sample = naive_degrees_sample(60.0, 300, 20_000, seed=21)
    assert bearing_ks_pvalue(sample) < ALPHA


# --- isotropy ----------------------------------------------------------------------------------


def spread_ratio_and_tolerance(sample):
    """Return mean(north²)/mean(east²) and its two-sided ALPHA tolerance.

    For isotropic Gamma(2, eps) distances, north² − east² = rho²·cos 2θ has variance
    E[rho⁴]/2 = 60/eps⁴ and mean(east²) → E[rho²]/2 = 3/eps², so the ratio's standard error
    is sqrt(60/n)/3 (delta method), whatever eps is.
    """
    north, east = north_east_offsets(*sample)
    return np.mean(north**2) / np.mean(east**2), Z_ALPHA * math.sqrt(60.0 / north.size) / 3.0


@pytest.mark.parametrize("lat", LATITUDES)
def test_north_and_east_displacements_share_one_distribution(lat):
    sample = fuzzed_sample(lat, 300, 20_000, seed_for(lat, 3))
    assert north_east_ks_pvalue(sample) > ALPHA


@pytest.mark.parametrize("lat", LATITUDES)
def test_north_south_to_east_west_spread_ratio_is_near_one(lat):
    ratio, tolerance = spread_ratio_and_tolerance(fuzzed_sample(lat, 300, 20_000, seed_for(lat, 4)))
    assert abs(ratio - 1.0) < tolerance


def test_isotropy_ks_rejects_naive_degrees_at_60():
    sample = naive_degrees_sample(60.0, 300, 20_000, seed=31)
    assert north_east_ks_pvalue(sample) < ALPHA


def test_spread_ratio_rejects_naive_degrees_at_60():
    ratio, tolerance = spread_ratio_and_tolerance(naive_degrees_sample(60.0, 300, 20_000, seed=32))
    assert abs(ratio - 1.0) > tolerance


# --- no exclusion zone -------------------------------------------------------------------------


def near_truth_binomtest(sample, radius_m):
    lats, lons, lat2, lon2 = sample
    near = int(np.count_nonzero(geodesic_distance_m(lats, lons, lat2, lon2) < 0.05 / eps_for(radius_m)))
    expected = 1.0 - 1.05 * math.exp(-0.05)  # C(0.05 / eps), whatever eps is
    return near, stats.binomtest(near, lats.size, expected)


def test_share_near_truth_is_about_012_percent():
    assert 1.0 - 1.05 * math.exp(-0.05) == pytest.approx(0.0012, abs=0.00005)


@pytest.mark.parametrize("lat", LATITUDES)
def test_outputs_near_the_truth_occur_at_the_expected_rate(lat):
    near, test = near_truth_binomtest(fuzzed_sample(lat, 300, 50_000, seed_for(lat, 5)), 300)
    assert near > 0
    assert test.pvalue > ALPHA


def test_binomial_test_rejects_a_donut():
    sample = donut_sample(45.0, 300, 50_000, seed=51, min_distance_m=0.05 / eps_for(300))
    near, test = near_truth_binomtest(sample, 300)
    assert near == 0
    assert test.pvalue < ALPHA


# --- the source of randomness ------------------------------------------------------------------


class CountingSource:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.calls = 0

    def random(self):
        self.calls += 1
        return self.rng.random()


def test_same_seed_gives_same_output():
    lats, lons = np.linspace(-60, 60, 50), np.linspace(-170, 170, 50)
    first = fuzz_points(lats, lons, eps_for(300), random.Random(2026))
    second = fuzz_points(lats, lons, eps_for(300), random.Random(2026))
    np.testing.assert_array_equal(first, second)


def test_different_seeds_give_different_output():
    first = fuzz_point(42.87, 74.57, eps_for(300), random.Random(1))
    second = fuzz_point(42.87, 74.57, eps_for(300), random.Random(2))
    assert first != second


def test_each_point_takes_exactly_two_uniforms():
    source = CountingSource(3)
    fuzz_points(np.zeros(1000), np.zeros(1000), eps_for(300), source)
    assert source.calls == 2000


def test_system_random_is_cryptographic():
    assert isinstance(system_random(), secrets.SystemRandom)


def test_default_source_is_system_random(monkeypatch):
    created = []

    class SpySystemRandom(secrets.SystemRandom):
        def __init__(self):
            super().__init__()
            self.calls = 0
            created.append(self)

        def random(self):
            self.calls += 1
            return super().random()

    monkeypatch.setattr(secrets, "SystemRandom", SpySystemRandom)
    fuzz_point(42.87, 74.57, eps_for(300))
    assert [spy.calls for spy in created] == [2]
