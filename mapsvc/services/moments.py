"""The moment a public read is answered for: now, rounded down to the read cache's quantum.

Every reader within one quantum (``READ_CACHE_S``) is answered for the same moment, so one
computed answer serves them all (:mod:`mapsvc.web.map.readcache`), and a plan made without a
moment weighs the danger the map shows.
"""

from __future__ import annotations

from datetime import datetime

from mapsvc.core.decay import floor_to_bucket
from mapsvc.settings import settings


def quantum_s() -> int:
    """Return the rounding of "now" for cached reads, in seconds (0: reads are not cached)."""
    return settings().read_cache.quantum_s


def rounded_now(now: datetime) -> datetime:
    """Return ``now`` rounded down to the cache's quantum (unchanged when caching is off)."""
    step = quantum_s()
    return now if step <= 0 else floor_to_bucket(now, step)
