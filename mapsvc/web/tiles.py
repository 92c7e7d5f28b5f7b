"""Map tiles through the service: the phone never contacts a tile provider.

``/tiles/<z>/<x>/<y>.png`` answers from a disk cache (:mod:`mapsvc.web.tilecache`: bounded,
oldest evicted first, no precise time on any file), or fetches the tile from the configured
upstream (``TILE_URL``) with the service's own User-Agent and nothing of the client's request:
no address, no cookies, no language, no referrer.

Only the tiles the map can show are served: those meeting the service area's box widened by
``TILE_MARGIN_KM``, at zoom levels ``TILE_MIN_ZOOM`` to ``TILE_MAX_ZOOM`` (the map page is
given the same box and levels, :func:`tile_view`); any other is 404 and the upstream never hears
of it. A tile not in the cache costs one of the client's ``TILE_MISS_RATE_LIMIT`` and one of
everyone's ``TILE_UPSTREAM_RATE_LIMIT`` (429 past them; a kept tile is still served), so that no
crawler can make the service download the map in bulk, against the tile provider's policy.

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
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app
from flask_babel import gettext as _
from flask_limiter import RateLimitExceeded

from mapsvc.core.tilegrid import Box, meets, tile_box, widened
from mapsvc.errors import InvalidInput, MapsvcError, NotFound
from mapsvc.settings import settings
from mapsvc.web.limits import client_key, count_request
from mapsvc.web.tilecache import TileCache

bp = Blueprint("tiles", __name__, url_prefix="/tiles")

#: Largest tile accepted from the upstream, in bytes.
MAX_TILE_BYTES = 512 * 1024

#: Deepest zoom level a tile provider numbers (a z beyond is not a tile at all).
DEEPEST_ZOOM = 24

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


@dataclass(frozen=True)
class TileView:
    """What the map may show with tiles: the box (west, south, east, north) and the zoom levels."""

    box: Box
    min_zoom: int
    max_zoom: int


def tile_view() -> TileView:
    """Return the tiles this app serves: the service area's box plus the margin, and the zoom range."""
    config = current_app.config
    box = widened(settings().area.bounds, float(config["TILE_MARGIN_KM"]) * 1000)
    return TileView(box, int(config["TILE_MIN_ZOOM"]), int(config["TILE_MAX_ZOOM"]))


def tile_cache() -> TileCache:
    """Return the app's tile cache (``TILE_CACHE_DIR``, default the instance folder's ``tiles/``)."""
    config = current_app.config
    folder = config.get("TILE_CACHE_DIR") or Path(current_app.instance_path) / "tiles"
    return TileCache(Path(folder), int(float(config["TILE_CACHE_MAX_MB"]) * 2**20))


def _number(value: str, field: str, upper: int) -> int:
    """Return a tile coordinate, checked to lie in [0, upper)."""
    if not value.isascii() or not value.isdigit() or len(value) > 8:
        raise InvalidInput(_("%(field)s must be a whole number", field=field), field, status=400)
    number = int(value)
    if number >= upper:
        raise InvalidInput(_("%(field)s is out of range", field=field), field, status=400)
    return number


def _coordinates(z: str, x: str, y: str) -> tuple[int, int, int]:
    """Return a tile's numbers: 400 when they name no tile, 404 when the map never shows that tile."""
    zoom = _number(z, "z", DEEPEST_ZOOM + 1)
    column, row = _number(x, "x", 2**zoom), _number(y, "y", 2**zoom)
    view = tile_view()
    if not view.min_zoom <= zoom <= view.max_zoom or not meets(tile_box(zoom, column, row), view.box):
        raise NotFound(_("this map has no tiles outside its area and zoom levels"))
    return zoom, column, row


def _fresh(fetched: float) -> bool:
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


def _count_miss() -> None:
    """Count a fetch against the client's and everyone's limits (429 past either)."""
    config = current_app.config
    count_request(str(config["TILE_MISS_RATE_LIMIT"]), "tile-miss", client_key())
    count_request(str(config["TILE_UPSTREAM_RATE_LIMIT"]), "tile-upstream", "everyone")


def reset_upstream_state() -> None:
    """Forget remembered upstream failures (for tests and after configuration changes)."""
    with _upstream_lock:
        _upstream.failures = 0
        _upstream.down_until = 0.0


@bp.get("/<z>/<x>/<y>.png")
def tile(z: str, x: str, y: str) -> Response:
    """Serve one map tile from the cache, fetching it from the upstream when needed."""
    if not current_app.config.get("TILE_URL"):
        raise NotFound(_("this service shows no map tiles"))
    zoom, column, row = _coordinates(z, x, y)
    cache = tile_cache()
    kept = cache.read(zoom, column, row)
    if kept is not None and _fresh(kept.fetched):
        body = kept.body
    else:
        try:
            _ready()
            _count_miss()
            body = fetch_upstream(zoom, column, row)
        except (MapsvcError, RateLimitExceeded):
            if kept is None:
                raise
            body = kept.body  # a stale tile beats no tile
        else:
            cache.store(zoom, column, row, body)
    response = Response(body, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=604800"
    return response


@bp.errorhandler(TileUnavailable)
def unavailable(error: TileUnavailable) -> tuple[dict[str, str], int, dict[str, str]]:
    """Answer 503 saying when to ask again: when this worker asks the upstream again."""
    wait = max(1, math.ceil(_upstream.down_until - time.monotonic()))
    return error.to_dict(), error.status, {"Retry-After": str(wait), "Cache-Control": "no-store"}


def init_app(app: Flask) -> None:
    """Check the tile settings: zoom levels, margin and cache bound."""
    config = app.config
    low, high = config["TILE_MIN_ZOOM"], config["TILE_MAX_ZOOM"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) or not (
        0 <= low <= high <= DEEPEST_ZOOM
    ):
        raise ValueError(f"TILE_MIN_ZOOM and TILE_MAX_ZOOM must be whole numbers, 0 <= min <= max <= {DEEPEST_ZOOM}")
    if not isinstance(config["TILE_MARGIN_KM"], int | float) or not 0 <= config["TILE_MARGIN_KM"] <= 1000:
        raise ValueError("TILE_MARGIN_KM must be a number of kilometres from 0 to 1000")
    if not isinstance(config["TILE_CACHE_MAX_MB"], int | float) or not config["TILE_CACHE_MAX_MB"] > 0:
        raise ValueError("TILE_CACHE_MAX_MB must be a number of megabytes above 0")
