"""Answers to public map reads shared by the workers through Redis, so that one worker computes a miss.

Used when the rate limits live in Redis (``RATELIMIT_STORAGE_URI`` ``redis://`` or
``rediss://``): the same Redis, under the limits' ``RATELIMIT_KEY_PREFIX``. It holds only what
any anonymous client is answered (events already fuzzed, heat already suppressed), never a
staff member's or trusted peer's answer; a key is a hash of the canonical query
(:mod:`mapsvc.web.readcache`), nothing about who asked. An answer lives ``READ_STALE_S``
seconds from the moment its computation began (``PX``), so the staleness bound holds across
workers too.

A worker that misses takes a short lock (``SET NX PX``) and computes; the others poll for its
answer, and compute themselves only if it has not come when the lock would have expired. A
worker whose own answer is due for its successor (:mod:`mapsvc.web.readcache`) takes a shared
answer only if that one is not due too; else it takes the lock and computes the successor, or,
when another worker holds the lock, keeps serving what it has. If
Redis fails, the worker computes locally and leaves Redis alone for a few seconds: a read is
never refused for the cache's sake.

Writes that take something off the public map move a generation number (:meth:`forget`):
the answers of earlier generations are no longer found and expire on their own.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Hashable

from mapsvc.settings import LimitSettings

log = logging.getLogger(__name__)

#: How long a worker's lock on computing one answer lasts; others wait at most about this long.
LOCK_MS = 3000
#: How often a waiting worker looks for the answer another computes, in seconds.
POLL_S = 0.01
#: How long a worker leaves Redis alone after it failed, in seconds.
RETRY_AFTER_S = 5.0
#: How long one call to Redis may take before it counts as failed, in seconds.
TIMEOUT_S = 0.5

#: One round trip: the answer if kept (with its remaining life), else the lock if free.
_FETCH = """
local generation = redis.call('GET', KEYS[1]) or '0'
local key = ARGV[1] .. generation .. ':' .. ARGV[2]
local body = redis.call('GET', key)
local left = body and redis.call('PTTL', key)
if body and left > tonumber(ARGV[5]) then return {'hit', body, left} end
if redis.call('SET', key .. ':lock', ARGV[3], 'NX', 'PX', ARGV[4]) then return {'lead', generation} end
if body then return {'hit', body, left} end
return {'wait', generation}
"""
#: Keep the answer for its remaining life, and free the lock if it is still this worker's.
_STORE = """
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""


class SharedAnswers:
    """Public answers kept in Redis for ``stale_s`` seconds, computed by one worker at a time."""

    def __init__(self, url: str, prefix: str, stale_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        import redis  # the [redis] extra, only needed when the limits live in Redis

        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._redis = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
        self._fetch = self._redis.register_script(_FETCH)
        self._store = self._redis.register_script(_STORE)
        self._base = f"mapsvc:answers:{prefix}:"
        self.stale_s = stale_s
        self._clock = clock
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def answer(self, key: Hashable, build: Callable[[], bytes], refresh_left_s: float = 0) -> tuple[bytes, float]:
        """Return the answer for ``key`` and how many more seconds it may be served.

        From Redis if another worker computed it less than ``stale_s`` ago; else computed here
        (by this worker alone while its lock lasts) and shared. ``refresh_left_s``: a shared
        answer with no more life than this left is due for its successor, computed here unless
        another worker computes it already (then the shared answer is returned).
        """
        digest = hashlib.sha256(repr(key).encode()).hexdigest()
        token = secrets.token_hex(8)
        give_up = self._clock() + LOCK_MS / 1000
        while self._usable():
            try:
                args: list[str | int] = [self._base, digest, token, LOCK_MS, int(refresh_left_s * 1000)]
                reply = self._fetch(keys=[self._base + "generation"], args=args)
            except self._errors as error:
                self._failed(error)
                break
            if reply[0] == b"hit":
                return bytes(reply[1]), int(reply[2]) / 1000
            if reply[0] == b"lead":
                return self._build_and_share(f"{self._base}{reply[1].decode()}:{digest}", token, build)
            if self._clock() >= give_up:
                break
            time.sleep(POLL_S)
        return _timed(build, self.stale_s, self._clock)

    def _build_and_share(self, key: str, token: str, build: Callable[[], bytes]) -> tuple[bytes, float]:
        """Compute the answer under this worker's lock, keep it in Redis for its remaining life, free the lock."""
        try:
            body, left = _timed(build, self.stale_s, self._clock)
        except BaseException:
            self._release(key, token, b"", 0)
            raise
        self._release(key, token, body, int(left * 1000))
        return body, left

    def _release(self, key: str, token: str, body: bytes, life_ms: int) -> None:
        try:
            self._store(keys=[key, key + ":lock"], args=[body, life_ms, token])
        except self._errors as error:
            self._failed(error)

    def forget(self) -> None:
        """Make every answer kept so far unreachable (a write took something off the public map)."""
        if not self._usable():
            return
        try:
            self._redis.incr(self._base + "generation")
        except self._errors as error:
            self._failed(error)

    def _usable(self) -> bool:
        return self._clock() >= self._retry_at

    def _failed(self, error: BaseException) -> None:
        """Leave Redis alone for a while; log the kind of failure only (its text may hold the URL)."""
        with self._lock:
            if not self._usable():
                return
            self._retry_at = self._clock() + RETRY_AFTER_S
        log.warning(
            "the shared read cache's Redis failed (%s): workers compute answers alone for %.0f s",
            type(error).__name__,
            RETRY_AFTER_S,
        )


def _timed(build: Callable[[], bytes], stale_s: float, clock: Callable[[], float]) -> tuple[bytes, float]:
    """Return ``build()`` and how many seconds of its ``stale_s`` are left, counted from when it began."""
    began = clock()
    body = build()
    return body, stale_s - (clock() - began)


def from_limits(limits: LimitSettings, stale_s: float) -> SharedAnswers | None:
    """Return the shared answers for the limits' Redis, or None when the limits do not live in Redis."""
    if not limits.storage_uri.startswith(("redis://", "rediss://")):
        return None
    return SharedAnswers(limits.storage_uri, limits.key_prefix, stale_s)
