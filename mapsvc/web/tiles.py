"""Map tiles through the service: the phone never contacts a tile provider.

``/tiles/<z>/<x>/<y>.png`` answers from a disk cache (:mod:`mapsvc.web.tilecache`: bounded,
deepest evicted first, no precise time on any file), or fetches the tile from the configured
upstream (``TILE_URL``) with the service's own User-Agent and nothing of the client's request:
no address, no cookies, no language, no referrer.

Only the tiles the map can show are served: those meeting the service area's box widened by
``TILE_MARGIN_KM``, at zoom levels ``TILE_MIN_ZOOM`` to ``TILE_MAX_ZOOM`` (the map page is
given the same box and levels, :func:`tile_view`); any other is 404 and the upstream never hears
of it. A tile not in the cache costs one of the client's ``TILE_MISS_RATE_LIMIT`` (and, from
``TILE_DEEP_MIN_ZOOM``, one of its ``TILE_DEEP_MISS_RATE_LIMIT``) and one of everyone's
``TILE_UPSTREAM_RATE_LIMIT`` (429 past them; a kept tile is still served), so that no crawler can
make the service download the map in bulk, against the tile provider's policy. Requests for one
tile at once, from any of this host's workers, take turns on its lock
(:meth:`~mapsvc.web.tilecache.TileCache.fetching`): the first counts the miss and fetches it,
the others find it kept.

The overview, the zoom levels from ``TILE_MIN_ZOOM`` to ``TILE_OVERVIEW_MAX_ZOOM`` (by default as
deep as keeps it to ``TILE_OVERVIEW_MAX_TILES`` tiles of the area), is counted apart: its misses
cost a per-client count of their own and one of everyone's ``TILE_OVERVIEW_RATE_LIMIT``, and the
cache never evicts its tiles. A crawl that spends the deep levels' budget leaves the overview (and
every cached tile) on the map; the overview's few tiles are each fetched once.

When the upstream cannot be reached, times out or answers 5xx or 429, this worker stops asking
it for a short back-off (2 s, doubling with each failure in a row up to ``TILE_RETRY_AFTER_S``),
answering 503 or a stale tile meanwhile; a 404 (or any other 4xx) concerns that tile alone.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app
from flask_babel import gettext as _
from flask_limiter import RateLimitExceeded

from mapsvc.core.tilegrid import Box, meets, overview_depth, tile_box, tile_count, widened
from mapsvc.errors import InvalidInput, MapsvcError, NotFound
from mapsvc.web.limits import client_key, count_request
from mapsvc.web.tilecache import LOW_WATER, TileCache

bp = Blueprint("tiles", __name__, url_prefix="/tiles")

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


def _number(value: str, field: str, upper: int) -> int:
    """Return a tile coordinate, checked to lie in [0, upper)."""
    if not value.isascii() or not value.isdigit() or len(value) > 8:
        raise InvalidInput(_("%(field)s must be a whole number", field=field), field, status=400)
    number = int(value)
    if number >= upper:
        raise InvalidInput(_("%(field)s is out of range", field=field), field, status=400)
    return number


def _coordinates(view: TileView, z: str, x: str, y: str) -> tuple[int, int, int]:
    """Return a tile's numbers: 400 when they name no tile, 404 when the map never shows that tile."""
    zoom = _number(z, "z", DEEPEST_ZOOM + 1)
    column, row = _number(x, "x", 2**zoom), _number(y, "y", 2**zoom)
    if not view.min_zoom <= zoom <= view.max_zoom or not meets(tile_box(zoom, column, row), view.box):
        raise NotFound(_("this map has no tiles outside its area and zoom levels"))
    return zoom, column, row


def fresh(fetched: float) -> bool:
    """Return whether a tile fetched at ``fetched`` (Unix seconds) is younger than ``TILE_CACHE_DAYS``."""
    return time.time() - fetched < float(current_app.config["TILE_CACHE_DAYS"]) * 86400


def _ready() -> None:
    """Refuse at once while this worker is backing off from a failed upstream."""
    wait = _upstream.down_until - time.monotonic()
    if wait > 0:
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


def _count_miss(view: TileView, zoom: int) -> None:
    """Count a fetch against the client's and everyone's limits of its tier (429 past any)."""
    config = current_app.config
    client = client_key()
    if zoom <= view.overview_max_zoom:  # a budget a crawl of deep tiles cannot touch
        count_request(str(config["TILE_MISS_RATE_LIMIT"]), "tile-overview-miss", client)
        count_request(str(config["TILE_OVERVIEW_RATE_LIMIT"]), "tile-overview-upstream", "everyone")
        return
    if zoom >= int(config["TILE_DEEP_MIN_ZOOM"]):  # first: a refusal here leaves the client's shallower misses
        count_request(str(config["TILE_DEEP_MISS_RATE_LIMIT"]), "tile-deep-miss", client)
    count_request(str(config["TILE_MISS_RATE_LIMIT"]), "tile-miss", client)
    count_request(str(config["TILE_UPSTREAM_RATE_LIMIT"]), "tile-upstream", "everyone")


def reset_upstream_state() -> None:
    """Forget remembered upstream failures (for tests and after configuration changes)."""
    with _upstream_lock:
        _upstream.failures = 0
        _upstream.down_until = 0.0


def _fetched(view: TileView, cache: TileCache, zoom: int, column: int, row: int) -> bytes:
    """Return a tile missing or stale when asked for, holding its lock: fetched once, whoever else asked."""
    kept = cache.read(zoom, column, row)  # another worker may have fetched it while this one waited
    if kept is not None and fresh(kept.fetched):
        return kept.body
    try:
        _ready()
        _count_miss(view, zoom)  # only now: a tile asked for by many at once is one miss
        body = fetch_upstream(zoom, column, row)
    except (MapsvcError, RateLimitExceeded):
        if kept is None:
            raise
        return kept.body  # a stale tile beats no tile
    cache.store(zoom, column, row, body)
    return body


@bp.get("/<z>/<x>/<y>.png")
def tile(z: str, x: str, y: str) -> Response:
    """Serve one map tile from the cache, fetching it from the upstream when needed."""
    if not current_app.config.get("TILE_URL"):
        raise NotFound(_("this service shows no map tiles"))
    view = tile_view()
    zoom, column, row = _coordinates(view, z, x, y)
    cache = tile_cache(view)
    kept = cache.read(zoom, column, row)
    if kept is not None and fresh(kept.fetched):
        body = kept.body
    else:
        with cache.fetching(zoom, column, row):
            body = _fetched(view, cache, zoom, column, row)
    response = Response(body, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=604800"
    return response


@bp.errorhandler(TileUnavailable)
def unavailable(error: TileUnavailable) -> tuple[dict[str, str], int, dict[str, str]]:
    """Answer 503 saying when to ask again: when this worker asks the upstream again."""
    wait = max(1, math.ceil(_upstream.down_until - time.monotonic()))
    return error.to_dict(), error.status, {"Retry-After": str(wait), "Cache-Control": "no-store"}


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


def init_app(app: Flask) -> None:
    """Check the tile settings: zoom levels, margin, cache bound, and that the overview fits the bound."""
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
