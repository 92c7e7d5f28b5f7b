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
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import STRATEGIES, FixedWindowRateLimiter
from limits.util import WindowStats

#: The name under which Flask-Limiter finds this strategy (``Limiter(strategy=...)``).
STRATEGY = "clock-window"


def window_of(item: RateLimitItem, now: float) -> tuple[int, float]:
    """Return the number of the clock window that ``now`` (Unix seconds) lies in, and its end."""
    length = item.get_expiry()
    number = math.floor(now / length)
    return number, (number + 1) * length


def seconds_left(end: float) -> int:
    """Return the time to live of a key whose window ends at ``end`` (Unix seconds), in whole seconds.

    Whole seconds (Redis's EXPIRE), rounded up: the key never outlives its window by more.
    """
    return max(1, math.ceil(end - time.time()))


def has_ended(end: float) -> bool:
    """Return whether the window that ends at ``end`` (Unix seconds) is over."""
    return end <= time.time()


#: Takes one from a count that is above zero, in one step, and keeps its expiry (Redis's DECR does).
_FLOORED_DECREMENT = b"""
if tonumber(redis.call("get", KEYS[1]) or "0") > 0 then
    return redis.call("decr", KEYS[1])
end
return 0
"""


def floored_decrement(storage: Storage, key: str) -> None:
    """Take one from the count ``key`` of ``storage`` unless it is 0, atomically, keeping its expiry.

    A test and a decrement in two steps could take a count below zero, when another request
    forgets it in between, and a count of -1 is one attempt more in that window.
    """
    if isinstance(storage, MemoryStorage):
        storage.decr(key)  # under the key's lock, never below 0
    elif isinstance(storage, RedisStorage):
        script = storage.get_connection().register_script(_FLOORED_DECREMENT)
        script([storage.prefixed_key(key)])
    elif storage.get(key) > 0:  # other stores (not supported by docs/accounts.md): not atomic
        storage.incr(key, 1, amount=-1)


class ClockWindowRateLimiter(FixedWindowRateLimiter):
    """A fixed-window limiter whose windows are aligned to the clock and named in the key."""

    def _key(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> tuple[str, float]:
        number, end = window_of(item, time.time())
        return f"{item.key_for(*identifiers)}/{number}", end

    def hit_window(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> tuple[bool, str]:
        """Count ``cost`` for this window; return whether the count stays within the limit, and the window's key."""
        key, end = self._key(item, identifiers)
        return self.storage.incr(key, seconds_left(end), amount=cost) <= item.amount, key

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        """Count ``cost`` for this window; return whether the count stays within the limit."""
        return self.hit_window(item, *identifiers, cost=cost)[0]

    def give_back(self, window: str) -> None:
        """Uncount one hit of the window named ``window`` by :meth:`hit_window`, never below zero.

        The window is the one the hit was counted in, even if the clock has since moved on to the next.
        """
        floored_decrement(self.storage, window)

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
