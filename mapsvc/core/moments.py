"""Moments as the service writes them in its answers (UTC, whole seconds, ISO 8601 with ``Z``) and reads them.

A public read is answered for now rounded down to the read cache's quantum (``READ_CACHE_S``):
every reader within one quantum is answered for the same moment, so one computed answer serves
them all, and a plan made without a moment weighs the danger the map shows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mapsvc.core.decay import floor_to_bucket


def iso(moment: datetime) -> str:
    """Return a compact ISO 8601 UTC timestamp."""
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"  # faster than strftime


def rounded_down(moment: datetime, step_s: int) -> datetime:
    """Return ``moment`` rounded down to a whole ``step_s`` seconds of UTC (unchanged when the step is 0)."""
    return moment if step_s <= 0 else floor_to_bucket(moment, step_s)
