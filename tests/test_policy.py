import math

import pytest

from mapsvc.core.decay import weight
from mapsvc.core.policy import DEFAULT_POLICIES, CategoryPolicy, build_policies

HOUR = 3600
DAY = 24 * HOUR


@pytest.mark.parametrize(
    ("category", "half_life_s"),
    [
        ("checkpoint", 3 * HOUR),
        ("patrol", 2 * HOUR),
        ("raid", 3 * DAY),
        ("detention", 3 * DAY),
        ("robbery", 7 * DAY),
        ("attack", 14 * DAY),
        ("extortion", 14 * DAY),
    ],
)
def test_default_half_lives(category, half_life_s):
    assert DEFAULT_POLICIES[category].half_life_s == half_life_s


@pytest.mark.parametrize(("category", "radius_m"), [("checkpoint", 150), ("raid", 300), ("attack", 500)])
def test_default_fuzz_radii(category, radius_m):
    assert DEFAULT_POLICIES[category].fuzz_radius_m == radius_m


@pytest.mark.parametrize(
    ("category", "bucket_s"), [("checkpoint", HOUR), ("patrol", HOUR), ("attack", DAY), ("extortion", DAY)]
)
def test_default_time_buckets(category, bucket_s):
    assert DEFAULT_POLICIES[category].bucket_s == bucket_s


def test_attacks_have_no_public_markers():
    assert DEFAULT_POLICIES["attack"].public_markers is False


def test_checkpoints_have_public_markers():
    assert DEFAULT_POLICIES["checkpoint"].public_markers is True


@pytest.mark.parametrize("category", sorted(DEFAULT_POLICIES))
def test_default_minimum_counts(category):
    policy = DEFAULT_POLICIES[category]
    assert (policy.min_count_public, policy.min_count_export) == (3, 5)


@pytest.mark.parametrize("category", sorted(DEFAULT_POLICIES))
def test_default_policies_are_keyed_by_name(category):
    assert DEFAULT_POLICIES[category].name == category


@pytest.mark.parametrize(("category", "radius_m"), [("checkpoint", 150), ("raid", 300), ("attack", 500)])
def test_epsilon_is_ln4_over_radius(category, radius_m):
    assert DEFAULT_POLICIES[category].epsilon() == pytest.approx(math.log(4) / radius_m, rel=1e-12)


@pytest.mark.parametrize("level", [math.log(2), math.log(4), 2.0])
def test_epsilon_scales_with_level(level):
    assert DEFAULT_POLICIES["raid"].epsilon(level) == pytest.approx(level / 300, rel=1e-12)


@pytest.mark.parametrize("category", sorted(DEFAULT_POLICIES))
def test_merge_distance_is_twice_the_mean_displacement(category):
    policy = DEFAULT_POLICIES[category]
    mean_displacement = 2.0 / (math.log(4) / policy.fuzz_radius_m)
    assert policy.merge_distance_m() == pytest.approx(2.0 * mean_displacement, rel=1e-12)


@pytest.mark.parametrize("factor", [1.0, 6.0])
def test_merge_factor_override_scales_the_merge_distance(factor):
    policy = build_policies({"raid": {"merge_factor": factor}})["raid"]
    assert policy.merge_distance_m() == pytest.approx(factor * 2.0 / (math.log(4) / 300), rel=1e-12)


@pytest.mark.parametrize("factor", [0, -1.0, float("nan")])
def test_merge_factor_must_be_positive(factor):
    with pytest.raises(ValueError, match="merge_factor"):
        build_policies({"raid": {"merge_factor": factor}})


def test_raid_merge_distance_is_twice_the_tabled_mean():
    # privacy.md: mean displacement 433 m at r = 300 m.
    assert DEFAULT_POLICIES["raid"].merge_distance_m() == pytest.approx(2 * 433, abs=1.0)


@pytest.mark.parametrize("category", sorted(DEFAULT_POLICIES))
def test_weight_at_horizon_is_the_threshold(category):
    policy = DEFAULT_POLICIES[category]
    assert weight(policy.horizon_s(), policy.half_life_s) == pytest.approx(0.05, rel=1e-12)


@pytest.mark.parametrize("threshold", [0.5, 0.05, 0.01])
def test_horizon_follows_the_threshold(threshold):
    policy = DEFAULT_POLICIES["checkpoint"]
    assert policy.horizon_s(threshold) == pytest.approx(3 * HOUR * math.log2(1 / threshold), rel=1e-12)


def test_checkpoint_horizon_is_about_13_hours():
    assert DEFAULT_POLICIES["checkpoint"].horizon_s() / HOUR == pytest.approx(3 * 4.32, abs=0.01)


def test_public_dict_gives_derived_values():
    out = DEFAULT_POLICIES["raid"].as_public_dict()
    assert out["name"] == "raid"
    assert out["merge_distance_m"] == pytest.approx(4 * 300 / math.log(4), abs=0.05)
    assert out["horizon_s"] == round(3 * DAY * math.log2(20))
    assert out["epsilon_per_m"] == pytest.approx(math.log(4) / 300, rel=1e-12)


# --- overrides ---------------------------------------------------------------------------------


def test_no_overrides_gives_the_defaults():
    assert build_policies() == DEFAULT_POLICIES
    assert build_policies({}) == DEFAULT_POLICIES


def test_override_changes_only_the_named_field():
    policies = build_policies({"raid": {"fuzz_radius_m": 400, "publication_delay_s": 3600}})
    raid = DEFAULT_POLICIES["raid"]
    expected = CategoryPolicy(
        name="raid",
        half_life_s=raid.half_life_s,
        fuzz_radius_m=400,
        bucket_s=raid.bucket_s,
        publication_delay_s=3600,
        public_markers=raid.public_markers,
        min_count_public=raid.min_count_public,
        min_count_export=raid.min_count_export,
    )
    assert policies["raid"] == expected


def test_override_leaves_other_categories_alone():
    policies = build_policies({"raid": {"fuzz_radius_m": 400}})
    assert {k: v for k, v in policies.items() if k != "raid"} == {
        k: v for k, v in DEFAULT_POLICIES.items() if k != "raid"
    }


def test_override_does_not_change_the_defaults():
    build_policies({"raid": {"fuzz_radius_m": 400}})
    assert DEFAULT_POLICIES["raid"].fuzz_radius_m == 300


def test_override_can_make_attack_markers_public():
    assert build_policies({"attack": {"public_markers": True}})["attack"].public_markers is True


NEW_CATEGORY = {
    "half_life_s": 6 * HOUR,
    "fuzz_radius_m": 250,
    "bucket_s": HOUR,
    "publication_delay_s": 0,
    "public_markers": False,
    "min_count_public": 4,
    "min_count_export": 6,
}


def test_new_category_with_every_field_is_added():
    policies = build_policies({"eviction": NEW_CATEGORY})
    assert policies["eviction"] == CategoryPolicy(name="eviction", **NEW_CATEGORY)
    assert policies.keys() == {*DEFAULT_POLICIES, "eviction"}


def test_new_category_missing_a_required_field_is_rejected():
    partial = {k: v for k, v in NEW_CATEGORY.items() if k != "half_life_s"}
    with pytest.raises(ValueError, match="eviction"):
        build_policies({"eviction": partial})


@pytest.mark.parametrize("field", ["radius", "name", "fuzz_radius"])
def test_unknown_field_is_rejected(field):
    with pytest.raises(ValueError, match=field):
        build_policies({"raid": {field: 400}})


@pytest.mark.parametrize("changes", [400, "fuzz_radius_m=400", None, ["fuzz_radius_m", 400]])
def test_override_that_is_not_a_mapping_is_rejected(changes):
    with pytest.raises(ValueError):
        build_policies({"raid": changes})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("half_life_s", 0),
        ("half_life_s", -3600),
        ("half_life_s", math.nan),
        ("half_life_s", math.inf),
        ("half_life_s", "3h"),
        ("half_life_s", True),
        ("fuzz_radius_m", 0),
        ("fuzz_radius_m", -150),
        ("fuzz_radius_m", None),
        ("bucket_s", 0),
        ("publication_delay_s", -1),
        ("publication_delay_s", "3600"),
        ("public_markers", "false"),
        ("public_markers", 0),
        ("min_count_public", 0),
        ("min_count_public", "3"),
        ("min_count_public", 2.5),
        ("min_count_export", 0),
    ],
)
def test_invalid_value_is_rejected(field, value):
    with pytest.raises(ValueError, match="attack"):
        build_policies({"attack": {field: value}})


def test_visible_buckets_span_the_horizon_up_to_the_delay():
    from datetime import UTC, datetime, timedelta

    at = datetime(2026, 6, 15, 22, 30, tzinfo=UTC)
    policy = build_policies({"raid": {"publication_delay_s": 3600}})["raid"]

    oldest, newest = policy.visible_buckets(at)

    assert newest == at - timedelta(hours=1)
    assert (at - oldest).total_seconds() == pytest.approx(3 * 86400 * math.log2(20))


def test_visible_buckets_are_none_when_the_delay_outlasts_visibility():
    from datetime import UTC, datetime

    policy = build_policies({"checkpoint": {"publication_delay_s": 30 * 3600}})["checkpoint"]

    assert policy.visible_buckets(datetime(2026, 6, 15, tzinfo=UTC)) is None
