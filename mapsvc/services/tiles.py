"""Map tiles from the upstream, for the tile proxy and ``mapsvc tiles seed``: fetched with our own headers only.

A tile is asked of the upstream (``TILE_URL``) with the service's own User-Agent and nothing of a
client's request, kept in the disk cache (:mod:`mapsvc.services.tilecache`), and counted against
the budgets the upstream's usage policy allows (:func:`count_request`, in the rate limiter's
store). After a failure the worker backs off, doubling the wait with each failure in a row.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from flask import Flask, current_app
from flask_babel import gettext as _
from flask_limiter import Limiter, RateLimitExceeded
from limits import RateLimitItem, parse_many

from mapsvc.core.errors import MapsvcError, NotFound
from mapsvc.core.geodesy import Box
from mapsvc.core.tilegrid import overview_depth, tile_count, widened
from mapsvc.services.tilecache import LOW_WATER, TileCache

#: Largest tile accepted from the upstream, in bytes.
MAX_TILE_BYTES = 512 * 1024

#: Deepest zoom level a tile provider numbers (a z beyond is not a tile at all).
DEEPEST_ZOOM = 24

#: The first back-off after a failure, in seconds; it doubles with each failure in a row.
FIRST_BACKOFF_S = 2.0

#: Longest wait a 429's Retry-After may impose, in seconds.
MAX_UPSTREAM_RETRY_AFTER_S = 3600.0

#: A generous size of one overview tile, in bytes (OpenStreetMap's city tiles are mostly 10-40 KB).
OVERVIEW_TILE_BYTES = 64 * 1024


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


@dataclass(frozen=True)
class TileView:
    """What the map may show with tiles: the box (west, south, east, north), the zoom levels, the overview's."""

    box: Box
    min_zoom: int
    max_zoom: int
    overview_max_zoom: int = -1

    def overview_tiles(self) -> int:
        """Return how many tiles the overview holds."""
        return sum(tile_count(z, self.box) for z in range(self.min_zoom, self.overview_max_zoom + 1))


def view_of(config: Mapping[str, Any], bounds: Box) -> TileView:
    """Return the tiles served for an area of ``bounds`` under ``config``."""
    box = widened(bounds, float(config["TILE_MARGIN_KM"]) * 1000)
    low, high = int(config["TILE_MIN_ZOOM"]), int(config["TILE_MAX_ZOOM"])
    overview = config["TILE_OVERVIEW_MAX_ZOOM"]
    if overview is None:
        overview = overview_depth(box, low, high, int(config["TILE_OVERVIEW_MAX_TILES"]))
    return TileView(box, low, high, min(int(overview), high))


def tile_view() -> TileView:
    """Return the tiles this app serves: the service area's box plus the margin, and the zoom range."""
    view: TileView = current_app.extensions["mapsvc.tile_view"]
    return view


def tile_cache(view: TileView) -> TileCache:
    """Return the app's tile cache (``TILE_CACHE_DIR``, default the instance folder's ``tiles/``)."""
    config = current_app.config
    folder = config.get("TILE_CACHE_DIR") or Path(current_app.instance_path) / "tiles"
    return TileCache(Path(folder), int(float(config["TILE_CACHE_MAX_MB"]) * 2**20), view.overview_max_zoom)


def fresh(fetched: float) -> bool:
    """Return whether a tile fetched at ``fetched`` (Unix seconds) is younger than ``TILE_CACHE_DAYS``."""
    return time.time() - fetched < float(current_app.config["TILE_CACHE_DAYS"]) * 86400


def ready() -> None:
    """Refuse at once while this worker is backing off from a failed upstream."""
    if retry_after_s() > 0:
        raise TileUnavailable(_("map tiles are not available now"))


def _back_off(asked_s: float = 0.0) -> None:
    """Stop asking the upstream for a while: longer with each failure in a row, or as it asked (429)."""
    cap = float(current_app.config["TILE_RETRY_AFTER_S"])
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
    url = current_app.config["TILE_URL"].format(z=z, x=x, y=y)
    headers = {"User-Agent": current_app.config["TILE_USER_AGENT"], "Accept": "image/png"}
    timeout = float(current_app.config["TILE_TIMEOUT_S"])
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as reply:
            body: bytes = reply.read(MAX_TILE_BYTES + 1)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code >= 500 or error.code == 429:
            _back_off(_retry_after(error) if error.code == 429 else 0.0)
            raise TileUnavailable(_("map tiles are not available now")) from None
        raise NotFound(_("the tile server has no such tile")) from None  # this tile alone
    except (OSError, ValueError):  # refused, unreachable, timed out, or a bad TILE_URL
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


def _whole(value: object, low: int, high: int) -> bool:
    """Return whether ``value`` is a whole number (not a bool) from ``low`` to ``high``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_zooms(config: Mapping[str, Any]) -> None:
    """Check the zoom levels served, the overview's and where the deep levels start."""
    low, high = config["TILE_MIN_ZOOM"], config["TILE_MAX_ZOOM"]
    if not (_whole(low, 0, DEEPEST_ZOOM) and _whole(high, low, DEEPEST_ZOOM)):
        raise ValueError(f"TILE_MIN_ZOOM and TILE_MAX_ZOOM must be whole numbers, 0 <= min <= max <= {DEEPEST_ZOOM}")
    overview = config["TILE_OVERVIEW_MAX_ZOOM"]
    if overview is not None and not _whole(overview, -1, DEEPEST_ZOOM):
        raise ValueError("TILE_OVERVIEW_MAX_ZOOM must be null or a zoom level (below TILE_MIN_ZOOM: no overview)")
    if not _whole(config["TILE_OVERVIEW_MAX_TILES"], 0, 10**6):
        raise ValueError("TILE_OVERVIEW_MAX_TILES must be a whole number of tiles from 0 to 1000000")
    if not _whole(config["TILE_DEEP_MIN_ZOOM"], 0, DEEPEST_ZOOM + 1):
        raise ValueError("TILE_DEEP_MIN_ZOOM must be a zoom level")


def _check_overview_fits(view: TileView, max_mb: float) -> None:
    """Refuse a cache bound that the never-evicted overview alone would fill (at a generous size a tile)."""
    tiles = view.overview_tiles()
    needed_mb = tiles * OVERVIEW_TILE_BYTES / 2**20
    if needed_mb > max_mb * LOW_WATER:
        raise ValueError(
            f"TILE_CACHE_MAX_MB={max_mb:g} cannot hold the map's overview: its {tiles} tiles (zoom "
            f"{view.min_zoom} to {view.overview_max_zoom}) are never evicted and may take {needed_mb:.0f} MB; "
            "raise TILE_CACHE_MAX_MB well above that, or lower TILE_OVERVIEW_MAX_ZOOM"
        )


def retry_after_s() -> float:
    """Return how long until this worker asks the upstream again, in seconds (0 or less: now)."""
    return _upstream.down_until - time.monotonic()


def init_app(app: Flask) -> None:
    """Check the tile settings (zoom levels, margin, cache bound, the overview within the bound); make the view."""
    config = app.config
    _check_zooms(config)
    if not isinstance(config["TILE_MARGIN_KM"], int | float) or not 0 <= config["TILE_MARGIN_KM"] <= 1000:
        raise ValueError("TILE_MARGIN_KM must be a number of kilometres from 0 to 1000")
    if not isinstance(config["TILE_CACHE_MAX_MB"], int | float) or not config["TILE_CACHE_MAX_MB"] > 0:
        raise ValueError("TILE_CACHE_MAX_MB must be a number of megabytes above 0")
    # Made once: every tile answer and map page needs it, and the area and settings do not change.
    view = app.extensions["mapsvc.tile_view"] = view_of(config, app.extensions["mapsvc.settings"].area.bounds)
    if config["TILE_URL"]:
        _check_overview_fits(view, config["TILE_CACHE_MAX_MB"])


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
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or ""
    identifiers = [part for part in (prefix, key, scope) if part]
    for item in parse_many(limit):
        if not limiter.limiter.hit(item, *identifiers):
            raise RateLimitExceeded(cast(Any, _Spent(item)))
