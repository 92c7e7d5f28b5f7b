"""Answers to the map's reads, kept in memory for a few seconds: a stated staleness, not a check per read.

Many phones in one city ask for the same view every minute: each worker computes an answer once
and serves it for ``READ_STALE_S`` seconds (default 5), counted from the moment its computation
began; an older answer is never served. So a new report, a moderator's approval or any other
change shows on the public map within ``READ_STALE_S`` seconds (plus the time one answer takes
to compute), and a write does not empty the cache: while a city reports a raid, reads stay fast.
A hit asks the database nothing.

Writes that take something off the public map (a withdrawal, every moderator's decision) drop
the answers of every worker of the server and the shared ones in Redis at once
(:func:`forget_answers`): the person who made the change sees it at the next read, whichever
worker answers it (with an intake worker, never the one that took the change). The workers learn
of it from a number in memory they all share, made before gunicorn forks them
(:class:`SharedGeneration`), which each read compares with the one its worker last saw: no
system call, no message. Another server on the same Redis (another host) may still show the
removed event for up to ``READ_STALE_S`` seconds.

An answer is computed afresh before it is too old to serve: the first read after
``REFRESH_AFTER`` of its life computes the next one while the other reads are still served the
kept answer, so that the reads of a city that keeps asking do not all wait for one computation
at each expiry. The bound holds all the same: the kept answer is served until its life ends,
never after.

While one thread computes a missing answer, the others that ask for it wait for that one
computation instead of each running the same queries. With the limits in Redis, the workers also
share the public answers and one computes a miss for all (:mod:`mapsvc.web.sharedanswers`).

Reads of "now" are answered for ``now`` rounded down to ``READ_CACHE_S`` seconds (the map
refreshes every minute; decay over a few seconds does not change what it draws), so that the
phones of one city share answers. When "now" moves on to the next rounding, every read asks for
a new key at once: while one thread computes its first answer, the others are served the answer
for the rounding before, if it is still young enough (``stand_in``), rather than all waiting
(every ``READ_CACHE_S`` seconds, on every worker at once).

Nothing here is written to disk; the keys hold only the query (view, moment, categories), in a
canonical form where several spellings ask the same (a moment rounded down, the page language
the answer is in rather than the ``lang`` asked for), so that varying them neither escapes the
cache nor fills it.
"""

from __future__ import annotations

import gzip
import logging
import mmap
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from flask import Flask, current_app
from werkzeug.http import generate_etag

from mapsvc.settings import Settings
from mapsvc.web import sharedanswers
from mapsvc.web.sharedanswers import SharedAnswers

log = logging.getLogger(__name__)


@dataclass
class Answer:
    """An encoded answer with its entity tag, and its gzip form once a client asked for it."""

    body: bytes
    etag: str
    _packed: bytes | None = field(default=None, repr=False)

    @classmethod
    def of(cls, body: bytes) -> Answer:
        """Return the answer of ``body``, tagged as Werkzeug tags bodies (SHA-1)."""
        return cls(body, generate_etag(body))

    def gzipped(self) -> bytes:
        """Return the body gzipped, compressed once per answer."""
        if self._packed is None:
            self._packed = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._packed


#: What one entry costs besides its body (key, answer, tag, the map's own), in bytes: counted, so
#: that a flood of small answers (an empty view at many moments) cannot grow the cache unbounded.
ENTRY_OVERHEAD_BYTES = 1024


#: The share of an answer's life after which the next read computes its successor.
REFRESH_AFTER = 0.7

#: How long a thread waits for another's computation of the answer it wants before computing it too, in seconds.
FLIGHT_WAIT_S = 30.0


class SharedGeneration:
    """A number that every process forked from the one that made it reads and moves (shared memory).

    It lives in an anonymous shared mapping: it is never written to any file. Two processes moving
    it at once may move it once only, which is enough: it differs from what either saw before.
    """

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, 8)  # MAP_SHARED: a forked child writes the parent's page
        self._number = memoryview(self._memory).cast("Q")  # one aligned 8-byte word: read and written whole

    @property
    def value(self) -> int:
        """Return the number now."""
        return int(self._number[0])

    def move(self) -> None:
        """Move the number on."""
        self._number[0] = (self._number[0] + 1) % 2**64


@dataclass
class _Kept:
    answer: Answer
    until: float  # on the cache's clock: served while the clock is before this
    refresh_at: float  # on the cache's clock: the first read from this moment computes the next answer


class _Flight:
    """One computation of an answer under way, which other threads asking for it wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: Answer | None = None


class ReadCache:
    """A least-recently-used map of keys to answers, each served ``stale_s`` seconds, bounded in bytes.

    The bound counts bodies plus each entry's overhead. ``shared``: answers shared with the
    other workers (public answers only; :meth:`answer`'s ``shared``).
    """

    def __init__(
        self,
        max_bytes: int,
        stale_s: float,
        shared: SharedAnswers | None = None,
        clock: Callable[[], float] = time.monotonic,
        removals: SharedGeneration | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.stale_s = stale_s
        self.shared = shared
        self.clock = clock
        self.removals = removals or SharedGeneration()  # moved by a removal in any process of the server
        self._removals_seen = self.removals.value
        self._kept: OrderedDict[Hashable, _Kept] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._size = 0
        self._generation = 0  # moved by forget(): computations begun before it are not kept
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Answer | None:
        """Return the answer kept for ``key`` if it is younger than ``stale_s``, else None."""
        with self._lock:
            self._catch_up()
            kept = self._kept.get(key)
            if kept is None:
                return None
            if self.clock() >= kept.until:
                self._size -= _cost(self._kept.pop(key).answer)
                return None
            self._kept.move_to_end(key)
            return kept.answer

    def __len__(self) -> int:
        """Return how many answers are kept."""
        return len(self._kept)

    def put(self, key: Hashable, answer: Answer, until: float | None = None, generation: int | None = None) -> None:
        """Keep ``answer`` for ``key`` until ``until`` (default: ``stale_s`` from now), within the byte bound.

        ``generation``: the cache's generation when the answer's computation began; the answer
        is not kept if a removal (:meth:`forget`) came since.
        """
        if len(answer.body) > self.max_bytes // 4:
            return  # one huge answer must not flush every other
        until = self.clock() + self.stale_s if until is None else until
        kept = _Kept(answer, until, until - (1 - REFRESH_AFTER) * self.stale_s)
        with self._lock:
            self._catch_up()
            if generation is not None and generation != self._generation:
                return
            old = self._kept.pop(key, None)
            self._size += _cost(answer) - (_cost(old.answer) if old is not None else 0)
            self._kept[key] = kept
            while self._size > self.max_bytes:
                _, dropped = self._kept.popitem(last=False)
                self._size -= _cost(dropped.answer)

    def answer(
        self, key: Hashable, build: Callable[[], bytes], shared: bool = True, stand_in: Hashable | None = None
    ) -> Answer:
        """Return the answer for ``key``: kept, or computed once however many threads ask meanwhile.

        ``shared``: the answer is public, and may come from (and go to) the other workers.
        ``stand_in``: the key of the same read one rounding of "now" earlier; while another
        thread computes the first answer for ``key``, the stand-in's answer is served if it is
        kept (so not older than ``stale_s``), instead of waiting.
        """
        answer = self.get(key)
        with self._lock:
            flight = self._flights.get(key)
            if answer is not None and (flight is not None or not self._due(key)):
                return answer  # kept, and not yet due, or its successor is under way
            leads = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leads:
            earlier = None if stand_in is None or answer is not None else self.get(stand_in)
            if earlier is not None:
                return earlier
            if flight.done.wait(FLIGHT_WAIT_S) and flight.answer is not None:
                return flight.answer
            return Answer.of(build())  # the computation failed, or hangs: this thread's own
        try:
            flight.answer = self._compute(key, build, shared, refresh=answer is not None)
            return flight.answer
        except Exception as error:
            if answer is None:
                raise
            # The kept answer is still young enough: serve it until its life ends, and try no more.
            log.warning("computing a map answer's successor failed (%s): the kept one is served", type(error).__name__)
            self._no_refresh(key)
            return answer
        finally:
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
            flight.done.set()

    def _no_refresh(self, key: Hashable) -> None:
        """Compute no successor of the kept answer of ``key`` before its life ends."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                kept.refresh_at = kept.until

    def _due(self, key: Hashable) -> bool:
        """Return whether the kept answer of ``key`` is old enough to compute its successor (the lock is held)."""
        kept = self._kept.get(key)
        return kept is not None and self.clock() >= kept.refresh_at

    def _compute(self, key: Hashable, build: Callable[[], bytes], shared: bool, refresh: bool = False) -> Answer:
        """Compute (or fetch from the other workers) the answer, and keep it for what is left of its life.

        ``refresh``: a kept answer is due for its successor; the other workers' answer is taken
        only if it is not due too.
        """
        generation = self._generation
        if shared and self.shared is not None:
            body, left = self.shared.answer(
                key, build, refresh_left_s=(1 - REFRESH_AFTER) * self.stale_s if refresh else 0
            )
        else:
            began = self.clock()
            body = build()
            left = self.stale_s - (self.clock() - began)
        answer = Answer.of(body)
        if left > 0:
            self.put(key, answer, self.clock() + left, generation)
        return answer

    def forget(self) -> None:
        """Drop every answer, here and shared; answers being computed now are not kept either.

        The shared answers go first: a read between the two would otherwise take an old shared
        answer and keep it under the new generation.
        """
        if self.shared is not None:
            self.shared.forget()
        self.removals.move()  # the other workers drop theirs at their next read
        with self._lock:
            self._drop_all()

    def _catch_up(self) -> None:
        """Drop every answer if a removal came in another process since this one last looked (the lock is held)."""
        seen = self.removals.value
        if seen != self._removals_seen:
            self._drop_all()

    def _drop_all(self) -> None:
        """Drop every kept answer and refuse the ones being computed (the lock is held)."""
        self._removals_seen = self.removals.value
        self._kept.clear()
        self._flights.clear()  # threads asking from now on compute afresh
        self._size = 0
        self._generation += 1


def _cost(answer: Answer) -> int:
    """Return what keeping ``answer`` costs in the bound, in bytes."""
    return len(answer.body) + ENTRY_OVERHEAD_BYTES


def read_cache() -> ReadCache | None:
    """Return this app's cache, or None when caching is off."""
    cache: ReadCache | None = current_app.extensions["mapsvc.read_cache"]
    return cache


def forget_answers() -> None:
    """Drop the kept answers, here and shared: call after a write that takes something off the public map."""
    cache = read_cache()
    if cache is not None:
        cache.forget()


def init_app(app: Flask) -> None:
    """Make the app's cache (none when READ_CACHE_S, READ_CACHE_MB or READ_STALE_S is 0)."""
    made: Settings = app.extensions["mapsvc.settings"]
    config, cache = made.read_cache, None
    if config.enabled:
        # Made with the app, in the process that gunicorn forks its workers from: they share its removals.
        shared = sharedanswers.from_limits(made.limits, config.stale_s)
        cache = ReadCache(int(config.megabytes * 2**20), config.stale_s, shared)
    app.extensions["mapsvc.read_cache"] = cache
