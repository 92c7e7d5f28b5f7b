"""Burst holds: a source that sends too many reports too fast has its further reports held.

The source is :func:`mapsvc.web.hooks.limits.client_key` (a daily-rotating salted hash of the
address). Its count lives in the rate limiter's storage only: process memory for the embedded
default, or the Redis of ``RATELIMIT_STORAGE_URI`` shared by several workers. It is one number
per source in a fixed window of the clock (:mod:`mapsvc.web.hooks.windows`), with no time of any
report; it is never written to the database or the logs, and the event it led to is not
remembered with it.
"""

from __future__ import annotations

from flask import Flask, current_app
from limits import RateLimitItem, parse
from limits.storage import storage_from_string

from mapsvc.web.hooks.limits import client_key
from mapsvc.web.hooks.windows import ClockWindowRateLimiter


class BurstHold:
    """A count of reports per source in a clock window: past ``limit``, reports are held, not published."""

    def __init__(self, limit: str, storage_uri: str, prefix: str = "") -> None:
        self.item: RateLimitItem = parse(limit)
        self.limiter = ClockWindowRateLimiter(storage_from_string(storage_uri))
        self.scope = (prefix, "burst") if prefix else ("burst",)

    def should_hold(self, key: str) -> bool:
        """Count one report of ``key``; return True when the window was already full.

        The source's reports are published again from the next window on (the next clock
        hour, for the default ``8 per hour``).
        """
        return not self.limiter.hit(self.item, *self.scope, key)


def init_app(app: Flask) -> None:
    """Make the app's burst hold, unless rate limiting or ``BURST_HOLD`` is turned off."""
    limits = app.extensions["mapsvc.settings"].limits
    if limits.burst_hold and limits.enabled:
        app.extensions["mapsvc.burst_hold"] = BurstHold(limits.burst_hold, limits.storage_uri, limits.key_prefix)


def is_burst() -> bool:
    """Return whether this request's report comes in a burst from its source (and count it)."""
    hold: BurstHold | None = current_app.extensions.get("mapsvc.burst_hold")
    return hold is not None and hold.should_hold(client_key())
