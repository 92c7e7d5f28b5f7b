"""Moments as the service writes them in its answers: UTC, whole seconds, ISO 8601 with ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """Return a compact ISO 8601 UTC timestamp."""
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"  # faster than strftime
