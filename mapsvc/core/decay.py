"""Time buckets, decay weights and forward-decayed sums (privacy.md §2 and §6).

Forward decay (Cormode et al., ICDE 2009): for a landmark L and rate lambda = ln 2 / h, an
aggregate keeps ``S = sum(exp(lambda * (t_i - L)))``; its decayed value at any ``now`` is
``S * exp(-lambda * (now - L))``. Inserting and reading are O(1). Before ``lambda * (t - L)``
grows large enough to overflow float64, the landmark moves forward and S is rescaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

#: Move the landmark once lambda * (t - L) exceeds this; exp(64) is far from float64's limit
#: (about exp(709)) and keeps S within a range where adding 1 still registers.
RESCALE_EXPONENT = 64.0


#: ln 2: a rate is ln 2 over a half-life (computed once, as the heat reads ask for it per series).
LN2 = math.log(2)


def to_epoch(moment: datetime) -> float:
    """Return seconds since the Unix epoch for an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    """Return the aware UTC datetime for seconds since the Unix epoch."""
    return datetime.fromtimestamp(seconds, tz=UTC)


def floor_to_bucket(moment: datetime, bucket_s: int) -> datetime:
    """Return the start of the UTC time bucket of ``bucket_s`` seconds holding ``moment``."""
    seconds = math.floor(to_epoch(moment))
    return from_epoch(seconds - seconds % bucket_s)


def decay_rate(half_life_s: float) -> float:
    """Return lambda = ln 2 / h in 1/seconds."""
    return LN2 / half_life_s


def decayed_value(s: float, landmark: float, now: float, rate: float) -> float:
    """Return the value at ``now`` of a forward-decayed sum ``s`` kept relative to ``landmark``.

    ``s * exp(-rate * (now - landmark))``, all times in epoch seconds and ``rate`` from
    :func:`decay_rate`. :meth:`DecayedSum.value_at` is this; the store calls it on the stored
    columns, one row at a time, without building a :class:`DecayedSum` for each.
    """
    return s * math.exp(-rate * (now - landmark))


def decay_factor(age_s: float, half_life_s: float) -> float:
    """Return ``2 ** (-age / h)`` for any age: above 1 for a negative one.

    The factor itself, for bounds on weights (the lowest weight over a span of time); an event's
    weight is :func:`weight`, which is 0 for an event from the future.
    """
    return float(2.0 ** (-age_s / half_life_s))


def weight(age_s: float, half_life_s: float) -> float:
    """Return the decay weight ``2 ** (-age / h)`` of an event ``age_s`` seconds old.

    Events from the future (negative age) have weight 0: they are not part of the map yet.
    """
    if age_s < 0:
        return 0.0
    return decay_factor(age_s, half_life_s)


@dataclass(frozen=True)
class DecayedSum:
    """A forward-decayed sum ``s`` relative to ``landmark`` (epoch seconds)."""

    landmark: float
    s: float

    def add(self, t: float, rate: float, amount: float = 1.0) -> DecayedSum:
        """Return the sum with ``amount`` added at time ``t``, moving the landmark if needed.

        ``t`` may lie before the landmark (a late report): its term is then below ``amount``.
        """
        landmark, s = self.landmark, self.s
        if rate * (t - landmark) > RESCALE_EXPONENT:
            s *= math.exp(-rate * (t - landmark))
            landmark = t
        return DecayedSum(landmark, max(s + amount * math.exp(rate * (t - landmark)), 0.0))

    def value_at(self, now: float, rate: float) -> float:
        """Return the decayed value at ``now`` (epoch seconds)."""
        return decayed_value(self.s, self.landmark, now, rate)

    @classmethod
    def start(cls, t: float) -> DecayedSum:
        """Return an empty sum with its landmark at ``t``."""
        return cls(landmark=t, s=0.0)
