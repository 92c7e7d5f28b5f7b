"""Map tiles from the upstream, for the tile proxy and ``mapsvc tiles seed``: fetched with our own headers only.

A tile is asked of the upstream (``TILE_URL``) with the service's own User-Agent and nothing of a
client's request, for the disk cache (:mod:`mapsvc.services.tilecache`), and counted against
the budgets the upstream's usage policy allows (:func:`count_request`, in the rate limiter's
store). After a failure the worker backs off, doubling the wait with each failure in a row.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, cast

from flask import current_app
from flask_babel import gettext as _
from flask_limiter import Limiter, RateLimitExceeded
from limits import RateLimitItem, parse_many

from mapsvc.core.errors import MapsvcError, NotFound
from mapsvc.core.tilegrid import TileView
from mapsvc.services.tilecache import TileCache
from mapsvc.settings import settings

#: Largest tile accepted from the upstream, in bytes.
MAX_TILE_BYTES = 512 * 1024

#: The first back-off after a failure, in seconds; it doubles with each failure in a row.
FIRST_BACKOFF_S = 2.0

#: Longest wait a 429's Retry-After may impose, in seconds.
MAX_UPSTREAM_RETRY_AFTER_S = 3600.0


@dataclass
class _Upstream:
    """The upstream as one worker knows it: failures in a row, and until when not to ask it."""

    failures: int = 0
    down_until: float = 0.0


_upstream = _Upstream()
_upstream_lock = threading.Lock()


class TileUnavailable(MapsvcError):
    """The upstream could not give the tile; the map shows its plain background."""

    status = 503


def tile_cache(view: TileView) -> TileCache:
    """Return the app's tile cache (``TILE_CACHE_DIR``, default the instance folder's ``tiles/``)."""
    t = settings().tiles
    return TileCache(t.cache_dir, int(t.cache_max_mb * 2**20), view.overview_max_zoom)


def fresh(fetched: float) -> bool:
    """Return whether a tile fetched at ``fetched`` (Unix seconds) is younger than ``TILE_CACHE_DAYS``."""
    return time.time() - fetched < settings().tiles.cache_days * 86400


def ready() -> None:
    """Refuse at once while this worker is backing off from a failed upstream."""
    if retry_after_s() > 0:
        raise TileUnavailable(_("map tiles are not available now"))


def _back_off(asked_s: float = 0.0) -> None:
    """Stop asking the upstream for a while: longer with each failure in a row, or as it asked (429)."""
    cap = settings().tiles.retry_after_s
    with _upstream_lock:
        _upstream.failures += 1
        wait = min(cap, FIRST_BACKOFF_S * 2 ** min(_upstream.failures - 1, 16))
        _upstream.down_until = time.monotonic() + max(wait, min(asked_s, MAX_UPSTREAM_RETRY_AFTER_S))


def _retry_after(error: urllib.error.HTTPError) -> float:
    """Return the seconds of a Retry-After given as a number (0 when absent or a date)."""
    value = (error.headers.get("Retry-After") or "").strip() if error.headers else ""
    return float(value) if value.isdigit() else 0.0


def fetch_upstream(z: int, x: int, y: int) -> bytes:
    """Fetch one tile from the upstream with our own headers only."""
    t = settings().tiles
    url = t.url.format(z=z, x=x, y=y)
    headers = {"User-Agent": t.user_agent, "Accept": "image/png"}
    timeout = t.timeout_s
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as reply:
            body: bytes = reply.read(MAX_TILE_BYTES + 1)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code >= 500 or error.code == 429:
            _back_off(_retry_after(error) if error.code == 429 else 0.0)
            raise TileUnavailable(_("map tiles are not available now")) from None
        raise NotFound(_("the tile server has no such tile")) from None  # this tile alone
    except (OSError, ValueError):  # refused, unreachable, timed out, or an address that does not parse
        _back_off()
        raise TileUnavailable(_("map tiles are not available now")) from None
    with _upstream_lock:
        _upstream.failures = 0
    if len(body) > MAX_TILE_BYTES or not body.startswith(b"\x89PNG"):
        raise TileUnavailable(_("map tiles are not available now"))
    return body


def reset_upstream_state() -> None:
    """Forget remembered upstream failures (for tests and after configuration changes)."""
    with _upstream_lock:
        _upstream.failures = 0
        _upstream.down_until = 0.0


def retry_after_s() -> float:
    """Return how long until this worker asks the upstream again, in seconds (0 or less: now)."""
    return _upstream.down_until - time.monotonic()


@dataclass(frozen=True)
class _Spent:
    """What RateLimitExceeded reads of a limit: which one was spent, and no message of its own."""

    limit: RateLimitItem
    error_message: None = None


def count_request(limit: str, scope: str, key: str) -> None:
    """Count one request of ``key`` against ``limit`` ("" for none); raise RateLimitExceeded when it is spent.

    For limits that only some requests of an endpoint pay (a tile fetched from the upstream, not
    one served from the cache), in the same store and clock windows as the limiter's own.
    """
    limiter: Limiter = current_app.extensions["mapsvc.limiter"]
    if not limiter.enabled or not limit:
        return
    prefix = settings().limits.key_prefix
    identifiers = [part for part in (prefix, key, scope) if part]
    for item in parse_many(limit):
        if not limiter.limiter.hit(item, *identifiers):
            raise RateLimitExceeded(cast(Any, _Spent(item)))
