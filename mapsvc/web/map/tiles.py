"""Map tiles through the service: the phone never contacts a tile provider.

``/tiles/<z>/<x>/<y>.png`` answers from a disk cache (:mod:`mapsvc.services.tilecache`: bounded,
deepest evicted first, no precise time on any file), or fetches the tile from the configured
upstream (``TILE_URL``) with the service's own User-Agent and nothing of the client's request:
no address, no cookies, no language, no referrer.

Only the tiles the map can show are served: those meeting the service area's box widened by
``TILE_MARGIN_KM``, at zoom levels ``TILE_MIN_ZOOM`` to ``TILE_MAX_ZOOM`` (the map page is
given the same box and levels, ``settings().tiles.view``); any other is 404 and the upstream never hears
of it. A tile not in the cache costs one of the client's ``TILE_MISS_RATE_LIMIT`` (and, from
``TILE_DEEP_MIN_ZOOM``, one of its ``TILE_DEEP_MISS_RATE_LIMIT``) and one of everyone's
``TILE_UPSTREAM_RATE_LIMIT`` (429 past them; a kept tile is still served), so that no crawler can
make the service download the map in bulk, against the tile provider's policy. Requests for one
tile at once, from any of this host's workers, take turns on its lock
(:meth:`~mapsvc.services.tilecache.TileCache.fetching`): the first counts the miss and fetches it,
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

from flask import Blueprint, Response
from flask_babel import gettext as _
from flask_limiter import RateLimitExceeded

from mapsvc.core.errors import InvalidInput, MapsvcError, NotFound
from mapsvc.core.tilegrid import DEEPEST_ZOOM, TileView, meets, tile_box
from mapsvc.services.tilecache import TileCache
from mapsvc.services.tiles import (
    TileUnavailable,
    count_request,
    fetch_upstream,
    fresh,
    ready,
    retry_after_s,
    tile_cache,
)
from mapsvc.settings import settings
from mapsvc.web.hooks.limits import client_key

bp = Blueprint("tiles", __name__, url_prefix="/tiles")


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


def _count_miss(view: TileView, zoom: int) -> None:
    """Count a fetch against the client's and everyone's limits of its tier (429 past any)."""
    s = settings()
    limits, client = s.limits, client_key()
    if zoom <= view.overview_max_zoom:  # a budget a crawl of deep tiles cannot touch
        count_request(limits.tile_miss_rate_limit, "tile-overview-miss", client)
        count_request(limits.tile_overview_rate_limit, "tile-overview-upstream", "everyone")
        return
    if zoom >= s.tiles.deep_min_zoom:  # first: a refusal here leaves the client's shallower misses
        count_request(limits.tile_deep_miss_rate_limit, "tile-deep-miss", client)
    count_request(limits.tile_miss_rate_limit, "tile-miss", client)
    count_request(limits.tile_upstream_rate_limit, "tile-upstream", "everyone")


def _fetched(view: TileView, cache: TileCache, zoom: int, column: int, row: int) -> bytes:
    """Return a tile missing or stale when asked for, holding its lock: fetched once, whoever else asked."""
    kept = cache.read(zoom, column, row)  # another worker may have fetched it while this one waited
    if kept is not None and fresh(kept.fetched):
        return kept.body
    try:
        ready()
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
    if not settings().tiles.url:
        raise NotFound(_("this service shows no map tiles"))
    view = settings().tiles.view
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
    wait = max(1, math.ceil(retry_after_s()))
    return error.to_dict(), error.status, {"Retry-After": str(wait), "Cache-Control": "no-store"}
