"""Limit counters in fixed windows of the clock: one count per source and window, no request times.

Flask-Limiter's moving window keeps the time of every request under each key, and the library's
fixed window starts at a source's first request, so the key's time to live tells that request's
second. Here the windows are the clock's own (every minute, every hour, from midnight UTC): a key
names its window, holds one number, and expires at the window's end, give or take the second it
was first counted in. A seized store shows how many requests each opaque source sent in the
current window, and nothing about when within it.

The price of fixed windows: a source may send a full window's worth at the end of one window and
again at the start of the next.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem
from limits.strategies import STRATEGIES, FixedWindowRateLimiter
from limits.util import WindowStats

#: The name under which Flask-Limiter finds this strategy (``Limiter(strategy=...)``).
STRATEGY = "clock-window"


def window_of(item: RateLimitItem, now: float) -> tuple[int, float]:
    """Return the number of the clock window that ``now`` (Unix seconds) lies in, and its end."""
    length = item.get_expiry()
    number = math.floor(now / length)
    return number, (number + 1) * length


class ClockWindowRateLimiter(FixedWindowRateLimiter):
    """A fixed-window limiter whose windows are aligned to the clock and named in the key."""

    def _key(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> tuple[str, float]:
        number, end = window_of(item, time.time())
        return f"{item.key_for(*identifiers)}/{number}", end

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        """Count ``cost`` for this window; return whether the count stays within the limit."""
        key, end = self._key(item, identifiers)
        # Whole seconds (Redis's EXPIRE), rounded up: the key never outlives its window by more.
        expiry = max(1, math.ceil(end - time.time()))
        return self.storage.incr(key, expiry, amount=cost) <= item.amount

    def give_back(self, item: RateLimitItem, *identifiers: str) -> None:
        """Uncount one earlier hit of this window (a refused or a right attempt), never below zero."""
        key, end = self._key(item, identifiers)
        if self.storage.get(key) > 0:
            self.storage.incr(key, max(1, math.ceil(end - time.time())), amount=-1)

    def test(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        """Return whether ``cost`` more would stay within the limit in this window (counts nothing)."""
        key, _ = self._key(item, identifiers)
        return self.storage.get(key) < item.amount - cost + 1

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        """Return when this window ends and how many requests it still allows."""
        key, end = self._key(item, identifiers)
        return WindowStats(end, max(0, item.amount - self.storage.get(key)))

    def clear(self, item: RateLimitItem, *identifiers: str) -> None:
        """Forget this window's count."""
        self.storage.clear(self._key(item, identifiers)[0])


STRATEGIES.setdefault(STRATEGY, ClockWindowRateLimiter)
