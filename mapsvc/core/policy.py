"""Categories, perpetrator types and the per-category privacy and decay policy.

The defaults follow ``shared/design/privacy.md``; an organisation overrides any field of any
category through the ``CATEGORY_OVERRIDES`` setting without touching code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from mapsvc.core.reuse import DEFAULT_REUSE_FACTOR

#: Odds between two candidate places within the protected radius change at most e^level.
DEFAULT_PRIVACY_LEVEL = math.log(4)

#: An event is hidden from layers once its decay weight falls below this.
DEFAULT_VISIBILITY_THRESHOLD = 0.05

PERPETRATORS: tuple[str, ...] = (
    "police",
    "other_official",
    "client",  # a client or someone posing as one
    "partner",
    "gang",
    "public",  # a member of the public
    "other",
    "unknown",
)

HOUR = 3600
DAY = 24 * HOUR


@dataclass(frozen=True)
class CategoryPolicy:
    """How one category of report is fuzzed, bucketed, decayed and published.

    Attributes
    ----------
    name : str
        Category key, as used in the API.
    half_life_s : float
        Seconds after which an event's weight has halved.
    fuzz_radius_m : float
        Radius r in metres within which the planar Laplace noise protects the reporter
        at the privacy level (odds change at most ``e**level``).
    bucket_s : int
        Event times are floored to multiples of this many seconds (UTC).
    publication_delay_s : int
        Seconds after the bucket start before an event may appear in any public output.
    public_markers : bool
        Whether single events are shown publicly; if not, only aggregated heat is.
    min_count_public : int
        Fewest distinct live events for a heat cell to be published.
    min_count_export : int
        Fewest distinct events for an aggregated cell in an export.
    premoderation : bool
        Whether an anonymous report waits for a moderator (pending) instead of appearing at
        once marked unverified. Reports of trusted peers and staff appear at once either way.
    reuse_factor : float
        A report whose true point lies within ``reuse_factor / epsilon`` metres of a point
        already published for the category is published at that point again instead of
        drawing fresh noise (the reuse distance theta; shared/design/privacy.md section 7 and docs/privacy.md).

    """

    name: str
    half_life_s: float
    fuzz_radius_m: float
    bucket_s: int
    publication_delay_s: int = 0
    public_markers: bool = True
    min_count_public: int = 3
    min_count_export: int = 5
    merge_factor: float = 2.0
    premoderation: bool = False
    reuse_factor: float = DEFAULT_REUSE_FACTOR

    def __post_init__(self) -> None:
        """Refuse policies that would break the privacy or decay arithmetic."""
        positive = ("half_life_s", "fuzz_radius_m", "bucket_s", "merge_factor", "reuse_factor")
        for field_name in positive:
            value = getattr(self, field_name)
            if isinstance(value, bool) or not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{self.name}: {field_name} must be a positive number")
        for field_name in ("publication_delay_s", "min_count_public", "min_count_export"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{self.name}: {field_name} must be a whole number")
        for field_name in ("public_markers", "premoderation"):
            if not isinstance(getattr(self, field_name), bool):
                raise ValueError(f"{self.name}: {field_name} must be true or false")
        if self.publication_delay_s < 0:
            raise ValueError(f"{self.name}: publication_delay_s must not be negative")
        if self.min_count_public < 1 or self.min_count_export < 1:
            raise ValueError(f"{self.name}: minimum counts must be at least 1")

    def epsilon(self, level: float = DEFAULT_PRIVACY_LEVEL) -> float:
        """Return the Laplace parameter epsilon in 1/metres for this category's radius."""
        return level / self.fuzz_radius_m

    def merge_distance_m(self, level: float = DEFAULT_PRIVACY_LEVEL) -> float:
        """Return the distance within which a new report merges into an event (default 2 x mean noise)."""
        return self.merge_factor * (2.0 / self.epsilon(level))

    def reuse_distance_m(self, level: float = DEFAULT_PRIVACY_LEVEL) -> float:
        """Return theta: a true point this near an already published point is published there again."""
        return self.reuse_factor / self.epsilon(level)

    def horizon_s(self, threshold: float = DEFAULT_VISIBILITY_THRESHOLD) -> float:
        """Return the age in seconds at which an event's weight falls below ``threshold``."""
        return self.half_life_s * math.log2(1.0 / threshold)

    def visible_buckets(
        self, at: datetime, threshold: float = DEFAULT_VISIBILITY_THRESHOLD
    ) -> tuple[datetime, datetime] | None:
        """Return (oldest, newest) bucket starts whose events are published and visible at ``at``.

        None when the publication delay outlasts the visibility itself.
        """
        newest = at - timedelta(seconds=self.publication_delay_s)
        oldest = at - timedelta(seconds=self.horizon_s(threshold))
        return (oldest, newest) if oldest <= newest else None

    def as_public_dict(self, level: float = DEFAULT_PRIVACY_LEVEL) -> dict[str, Any]:
        """Return what a client needs to know about the category, in plain units."""
        out = asdict(self)
        out["merge_distance_m"] = round(self.merge_distance_m(level), 1)
        out["reuse_distance_m"] = round(self.reuse_distance_m(level), 1)
        out["horizon_s"] = round(self.horizon_s())
        out["epsilon_per_m"] = self.epsilon(level)
        return out


def _policy(name: str, half_life: timedelta, radius: float, bucket: timedelta, **kw: Any) -> CategoryPolicy:
    return CategoryPolicy(
        name=name,
        half_life_s=half_life.total_seconds(),
        fuzz_radius_m=radius,
        bucket_s=int(bucket.total_seconds()),
        **kw,
    )


_H, _D = timedelta(hours=1), timedelta(days=1)

#: Defaults from privacy.md. Attacks are published only as heat: a marker for a single attack,
#: however fuzzed, is the one thing that could lead an attacker back to the person attacked.
#: No category waits for a moderator by default: an unworked queue would silently hide real
#: warnings, while an unverified one is shown as such (docs/configuration.md gives the reasoning).
DEFAULT_POLICIES: dict[str, CategoryPolicy] = {
    p.name: p
    for p in (
        _policy("checkpoint", 3 * _H, 150, _H),
        _policy("patrol", 2 * _H, 150, _H),
        _policy("raid", 3 * _D, 300, _H),
        _policy("detention", 3 * _D, 300, _D),
        _policy("extortion", 14 * _D, 300, _D),
        _policy("attack", 14 * _D, 500, _D, public_markers=False),
        _policy("robbery", 7 * _D, 300, _D),
        _policy("other", 3 * _D, 300, _D),
    )
}

_FIELD_NAMES = {f.name for f in fields(CategoryPolicy)} - {"name"}


def build_policies(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, CategoryPolicy]:
    """Return the category policies with an organisation's overrides applied.

    Parameters
    ----------
    overrides : mapping of category name to mapping of field to value, optional
        For example ``{"raid": {"fuzz_radius_m": 400, "publication_delay_s": 3600}}``.
        A category not among the defaults is added; it must then give every field.

    Raises
    ------
    ValueError
        If an override names an unknown field or gives an invalid value.

    """
    policies = dict(DEFAULT_POLICIES)
    for name, changes in (overrides or {}).items():
        if not isinstance(changes, Mapping):
            raise ValueError(f"category override for {name!r} must be a mapping")
        unknown = set(changes) - _FIELD_NAMES
        if unknown:
            raise ValueError(f"category override for {name!r} has unknown fields: {sorted(unknown)}")
        if name in policies:
            policies[name] = replace(policies[name], **changes)
        else:
            try:
                policies[name] = CategoryPolicy(name=name, **changes)
            except TypeError as exc:
                raise ValueError(f"new category {name!r} must give every policy field") from exc
    return policies
