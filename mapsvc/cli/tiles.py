"""``mapsvc tiles seed``: fetch the map's overview into the tile cache once, one tile at a time.

The overview (zoom ``TILE_MIN_ZOOM`` to ``TILE_OVERVIEW_MAX_ZOOM``, about a thousand tiles for a
city) is what everyone zooms in from, and the cache never evicts it. Seeding it before peers use
the map means no one waits for it, and no crawl can race them for its budget. The command is
polite to the tile provider: it asks for one tile at a time with a pause between, only for the
overview's tiles not cached or older than ``TILE_CACHE_DAYS``, each counted against
``TILE_OVERVIEW_RATE_LIMIT``; it stops at the first sign of trouble (a failure, a 429, or that
budget spent).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import click
from flask.cli import with_appcontext
from flask_limiter import RateLimitExceeded

from mapsvc.core.errors import NotFound
from mapsvc.core.tilegrid import TileView, tiles_meeting
from mapsvc.services.tiles import TileUnavailable, count_request, fetch_upstream, fresh, tile_cache
from mapsvc.settings import settings

tiles_group = click.Group("tiles", help="The map tiles' cache.")


def overview(view: TileView) -> Iterator[tuple[int, int, int]]:
    """Yield the overview's tiles, shallowest first."""
    for z in range(view.min_zoom, view.overview_max_zoom + 1):
        columns, rows = tiles_meeting(z, view.box)
        for x in columns:
            for y in rows:
                yield z, x, y


@tiles_group.command("seed")
@click.option(
    "--pause", default=1.0, show_default=True, type=click.FloatRange(0.2, 60), help="Seconds between fetches."
)
@with_appcontext
def tiles_seed(pause: float) -> None:
    """Fetch the overview's tiles that are not cached (or are stale), one at a time."""
    if not settings().tiles.url:
        raise click.ClickException("TILE_URL is empty: this service shows no map tiles")
    view = settings().tiles.view
    cache, fetched, missing = tile_cache(view), 0, 0
    for z, x, y in overview(view):
        try:
            with cache.fetching(z, x, y):  # a worker asked for it meanwhile: fetched once
                kept = cache.read(z, x, y)
                if kept is not None and fresh(kept.fetched):
                    continue
                count_request(settings().limits.tile_overview_rate_limit, "tile-overview-upstream", "everyone")
                cache.store(z, x, y, fetch_upstream(z, x, y))
            fetched += 1
        except NotFound:
            missing += 1  # the provider has no such tile
        except (TileUnavailable, RateLimitExceeded) as stop:
            why = "the tile server failed" if isinstance(stop, TileUnavailable) else "TILE_OVERVIEW_RATE_LIMIT is spent"
            raise click.ClickException(f"stopped after {fetched} tiles: {why}; run it again later") from None
        time.sleep(pause)
    click.echo(f"overview cached: zoom {view.min_zoom} to {view.overview_max_zoom}, {view.overview_tiles()} tiles")
    click.echo(f"fetched {fetched}, the tile server had no tile for {missing}")
