"""Answers to the map's reads, kept in memory until the store's data changes.

Many phones in one city ask for the same view every minute, and between two writes the answer
to the same question is the same: each worker computes it once. Every key holds the store's
version, which every committed write moves in its own transaction, so a new report, a
withdrawal or a moderator's decision shows at the next read. Reads of "now" are answered for
``now`` rounded down to ``READ_CACHE_S`` seconds (the map refreshes every minute; decay over a
few seconds does not change what it draws), so that the phones of one city share answers.

Nothing here is written to disk; the keys hold only the query (view, moment, categories), in a
canonical form where several spellings ask the same (a moment rounded down, the page language
the answer is in rather than the ``lang`` asked for), so that varying them neither escapes the
cache nor fills it.
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Flask, current_app
from werkzeug.http import generate_etag


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


class ReadCache:
    """A least-recently-used map of keys to answers, bounded in bytes (bodies plus each entry's overhead)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[Hashable, Answer] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Answer | None:
        """Return the answer kept for ``key``, or None."""
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
            return body

    def __len__(self) -> int:
        """Return how many answers are kept."""
        return len(self._bodies)

    def put(self, key: Hashable, answer: Answer) -> None:
        """Keep ``answer`` for ``key``, dropping the least recently used beyond the byte bound."""
        if len(answer.body) > self.max_bytes // 4:
            return  # one huge answer must not flush every other
        cost = _cost(answer)
        with self._lock:
            old = self._bodies.pop(key, None)
            self._size += cost - (_cost(old) if old is not None else 0)
            self._bodies[key] = answer
            while self._size > self.max_bytes:
                _, dropped = self._bodies.popitem(last=False)
                self._size -= _cost(dropped)

    def answer(self, key: Hashable, build: Callable[[], bytes]) -> Answer:
        """Return the answer for ``key``, building and keeping it when missing."""
        answer = self.get(key)
        if answer is None:
            answer = Answer.of(build())
            self.put(key, answer)
        return answer


def _cost(answer: Answer) -> int:
    """Return what keeping ``answer`` costs in the bound, in bytes."""
    return len(answer.body) + ENTRY_OVERHEAD_BYTES


def quantum_s() -> int:
    """Return the rounding of "now" for cached reads, in seconds (0: reads are not cached)."""
    return int(current_app.config["READ_CACHE_S"])


def rounded_now(now: datetime) -> datetime:
    """Return ``now`` rounded down to the cache's quantum (unchanged when caching is off)."""
    step = quantum_s()
    if step <= 0:
        return now
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, UTC)


def read_cache() -> ReadCache | None:
    """Return this app's cache, or None when caching is off."""
    cache: ReadCache | None = current_app.extensions["mapsvc.read_cache"]
    return cache


def init_app(app: Flask) -> None:
    """Check the settings and make the app's cache (none when READ_CACHE_S or READ_CACHE_MB is 0)."""
    seconds, megabytes = app.config["READ_CACHE_S"], app.config["READ_CACHE_MB"]
    if not isinstance(seconds, int) or not isinstance(megabytes, int | float) or seconds < 0 or megabytes < 0:
        raise ValueError("READ_CACHE_S must be a whole number of seconds >= 0 and READ_CACHE_MB a number >= 0")
    enabled = seconds > 0 and megabytes > 0
    app.extensions["mapsvc.read_cache"] = ReadCache(int(megabytes * 2**20)) if enabled else None
