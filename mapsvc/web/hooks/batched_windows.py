"""The read limit counted in each worker and settled with Redis in batches: a read never waits on Redis.

Every anonymous read pays ``READ_RATE_LIMIT``, and its answer usually comes from memory, so one
Redis round trip per read was most of a worker's time under load. Here each worker keeps, per key
(the same keys, in the same clock windows, as :mod:`mapsvc.web.hooks.windows`), the hits it admitted and
has not sent yet (pending) and the total Redis last answered (known). A hit is admitted if known +
pending + the hit stays within the limit: a check under a lock, without I/O. A thread of the
worker, started by its first hit (and again after a fork, which keeps no thread), sends every
pending count every :data:`FLUSH_S` in one pipeline, with the storage's own script (INCRBY, and the
expiry set when the key is made, as ``RedisStorage.incr`` does: the keys look as before), and keeps
the totals Redis answers. Only the scopes given to :func:`count_in_each_worker` are counted so (the
read limit); sign-in, intake, burst holds, wrong passwords and tiles stay exact, one Redis call per
hit. With ``memory://`` (one process), or a Redis Cluster, every count is direct, as before.

How far over the limit a source may get. A worker admits at most the limit less the last total it
knew, so alone it never passes the limit, and W workers never pass W times the limit, whatever
happens to Redis. While Redis answers, the total passes the limit only by hits that a worker
admitted before a flush told it that the limit was spent: what it admits between its last flush
before the total Redis holds reached the limit and its first flush after (FLUSH_S and a round
trip, or the hits it admits on an older total if it had been idle). So in a window a source gets
at most the limit plus, for each of the W workers, what that worker admits to it between two
flushes (about W × its hits per flush interval): for the default 600 per minute, a
crawler answered 100 times a second by each of 2 workers gets some 50 reads more. The excess is
largest at a window's start, where every worker starts from 0. That is acceptable for this limit:
it stops one address (a crawler, a scraper) from taking the server's whole time, and is no
security boundary as the sign-in and password limits are, which stay exact.

Redis unreachable, or slow: reads never wait for it, and nothing raises into a request. A flush
that fails keeps its counts pending and is tried again FLUSH_S later; meanwhile each worker counts
alone (at most the limit each, as above). The first failure is logged once as a warning naming the
error's type only, never a key, and the recovery once. (The exact limits still raise into their
requests while Redis is down, Flask-Limiter's ``RATELIMIT_SWALLOW_ERRORS`` being off: sign-in and
intake are answered 500, as anonymous reads were when their limit was counted in Redis.)

Memory stays bounded: only admitted hits are pending (a refused read is not sent: the window is
spent either way, so a key counts admitted reads), at most the limit per key, and a key's entry is
dropped, sent or not, when its window ends, as its Redis key does. A worker that stops loses its
unsent hits, an interval's at most. Only ``hit`` is batched: ``test`` and ``get_window_stats``
read the total Redis holds (Flask-Limiter calls neither for these limits, its headers being off).
The locks are not made anew after a fork: gunicorn forks its workers from its arbiter, which serves
no request, so no thread holds them then.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from flask_limiter import Limiter
from limits import RateLimitItem
from limits.storage import RedisClusterStorage, RedisStorage, Storage
from limits.strategies import STRATEGIES

from mapsvc.web.hooks import windows

if TYPE_CHECKING:
    from redis import Redis  # the [redis] extra, only needed when the limits live in Redis

#: The name under which Flask-Limiter finds this strategy (``Limiter(strategy=...)``).
STRATEGY = "clock-window-batched"
#: Seconds between two flushes of a worker's counts to Redis.
FLUSH_S = 0.25

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Count:
    """One key's count in this worker: when its window ends, Redis's last total, the hits not sent yet."""

    end: float
    known: int = 0
    pending: int = 0


class WorkerCounts:
    """Counts of clock-window keys kept in this process and added to a Redis every FLUSH_S."""

    def __init__(self, storage: RedisStorage) -> None:
        self._storage = storage
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()  # the counts; held for no I/O
        self._flushing = threading.Lock()  # one flush at a time, so that no count is sent twice
        self._flusher_pid = 0  # the process whose flusher runs (none yet)
        self._flusher_generation = 0
        self._failing = False

    def __len__(self) -> int:
        """Return how many keys this worker keeps (those of windows not yet over)."""
        return len(self._counts)

    def hit(self, key: str, end: float, amount: int, cost: int = 1) -> bool:
        """Admit ``cost`` more for ``key``, whose window ends at ``end``, if it stays within ``amount``; no I/O."""
        with self._lock:
            if self._flusher_pid != os.getpid():
                self._start_flusher()
            count = self._counts.get(key)
            if count is None:
                count = self._counts[key] = _Count(end)
            admitted = count.known + count.pending + cost <= amount
            if admitted:
                count.pending += cost
            return admitted

    def _start_flusher(self) -> None:
        """Start this process's flusher; counts pending from before a fork are the parent's to send."""
        for count in self._counts.values():
            count.pending = 0
        self._flusher_pid = os.getpid()
        self._flusher_generation += 1
        flusher = threading.Thread(
            target=_flush_every,
            args=(weakref.ref(self), self._flusher_generation, FLUSH_S),
            name="mapsvc-limit-flusher",
            daemon=True,
        )
        flusher.start()

    def is_flusher(self, generation: int) -> bool:
        """Return whether the flusher started as ``generation`` is this process's current one."""
        return generation == self._flusher_generation

    def flush(self) -> None:
        """Add every pending count to Redis in one pipeline and keep the totals; drop the windows that are over."""
        with self._flushing:
            sending = self._take_stock()
            if not sending:
                return
            try:
                totals = self._send(sending)
            except Exception as error:  # the flusher must outlive any error, and raise into no request
                if not self._failing:
                    log.warning("the read limit's counts were not sent to the limit store (%s)", type(error).__name__)
                    self._failing = True
                return
            if self._failing:
                log.info("the read limit's counts reach the limit store again")
                self._failing = False
            self._settle(sending, totals)

    def _take_stock(self) -> dict[str, tuple[int, float]]:
        """Drop the counts of windows that are over; return each other key's pending count and window end."""
        with self._lock:
            self._counts = {key: count for key, count in self._counts.items() if not windows.has_ended(count.end)}
            return {key: (count.pending, count.end) for key, count in self._counts.items() if count.pending}

    def _send(self, sending: dict[str, tuple[int, float]]) -> list[int]:
        """Add the counts to Redis with the storage's own script, in one pipeline; return the new totals."""
        storage = self._storage
        pipeline = cast("Redis", storage.get_connection()).pipeline(transaction=False)
        for key, (pending, end) in sending.items():
            storage.lua_incr_expire([storage.prefixed_key(key)], [windows.seconds_left(end), pending], client=pipeline)
        return [int(total) for total in pipeline.execute()]

    def _settle(self, sent: dict[str, tuple[int, float]], totals: list[int]) -> None:
        """Take what was sent off the pending counts and keep Redis's totals (hits admitted meanwhile stay)."""
        with self._lock:
            for (key, (pending, _end)), total in zip(sent.items(), totals, strict=True):
                count = self._counts[key]  # only a flush drops a key
                count.pending -= pending
                count.known = total


def _flush_every(counts_of: Callable[[], WorkerCounts | None], generation: int, interval: float) -> None:
    """Flush the counts every ``interval`` seconds, until they are gone or a newer flusher took over."""
    while True:
        time.sleep(interval)
        counts = counts_of()
        if counts is None or not counts.is_flusher(generation):
            return
        counts.flush()
        del counts  # hold no reference while asleep: the counts go with their app


class BatchedClockWindowRateLimiter(windows.ClockWindowRateLimiter):
    """Clock windows as :class:`~.windows.ClockWindowRateLimiter`; some scopes counted in each worker."""

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)
        #: The shared limits' scopes counted in each worker (the last identifier of their hits).
        self.batched_scopes: frozenset[str] = frozenset()
        self.worker_counts: WorkerCounts | None = None
        # redis-py loads a script for a plain pipeline only, not a cluster's: a Redis Cluster counts each hit.
        if isinstance(storage, RedisStorage) and not isinstance(storage, RedisClusterStorage):
            self.worker_counts = WorkerCounts(storage)

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        """Count ``cost`` for this window: in this worker for a batched scope, else in the store."""
        if self.worker_counts is None or not identifiers or identifiers[-1] not in self.batched_scopes:
            return super().hit(item, *identifiers, cost=cost)
        key, end = self._key(item, identifiers)
        return self.worker_counts.hit(key, end, item.amount, cost)

    def flush(self) -> None:
        """Send this worker's counts now (the flusher does it every FLUSH_S)."""
        if self.worker_counts is not None:
            self.worker_counts.flush()


def count_in_each_worker(limiter: Limiter, *scopes: str) -> None:
    """Have ``limiter`` count the hits of the shared limits ``scopes`` in each worker, settled in batches."""
    if not limiter.enabled:
        return  # RATELIMIT_ENABLED is off: there is no strategy, and nothing is counted
    strategy = limiter.limiter
    if not isinstance(strategy, BatchedClockWindowRateLimiter):
        raise TypeError(f"the limiter's strategy must be {STRATEGY!r}")
    strategy.batched_scopes = frozenset(scopes)


STRATEGIES.setdefault(STRATEGY, BatchedClockWindowRateLimiter)
