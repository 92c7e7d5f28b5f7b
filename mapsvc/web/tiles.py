"""Map tiles through the service: the phone never contacts a tile provider.

``/tiles/<z>/<x>/<y>.png`` answers from an on-disk cache, or fetches the tile from the configured
upstream (``TILE_URL``) with the service's own User-Agent and nothing of the client's request:
no address, no cookies, no language, no referrer. When the upstream cannot be reached the map
still works on its plain background; failures are remembered briefly so that a dead upstream
does not make every tile wait for a time-out.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from flask import Blueprint, Response, current_app
from flask_babel import gettext as _

from mapsvc.errors import InvalidInput, MapsvcError, NotFound

bp = Blueprint("tiles", __name__, url_prefix="/tiles")

#: Largest tile accepted from the upstream, in bytes.
MAX_TILE_BYTES = 512 * 1024

_down_until = 0.0
_down_lock = threading.Lock()


class TileUnavailable(MapsvcError):
    """The upstream could not give the tile; the map shows its plain background."""

    status = 503


def _number(value: str, field: str, upper: int) -> int:
    """Return a tile coordinate, checked to lie in [0, upper)."""
    if not value.isascii() or not value.isdigit() or len(value) > 7:
        raise InvalidInput(_("%(field)s must be a whole number", field=field), field, status=400)
    number = int(value)
    if number >= upper:
        raise InvalidInput(_("%(field)s is out of range", field=field), field, status=400)
    return number


def tile_path(z: int, x: int, y: int) -> Path:
    """Return where a tile is cached on disk."""
    folder = current_app.config.get("TILE_CACHE_DIR") or Path(current_app.instance_path) / "tiles"
    return Path(folder) / str(z) / str(x) / f"{y}.png"


def _fresh(path: Path) -> bool:
    max_age_s = float(current_app.config.get("TILE_CACHE_DAYS", 30)) * 86400
    try:
        return time.time() - path.stat().st_mtime < max_age_s
    except OSError:
        return False


def _store(path: Path, body: bytes) -> None:
    """Write a tile atomically, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(fd, "wb") as out:
        out.write(body)
    os.replace(tmp, path)


def fetch_upstream(z: int, x: int, y: int) -> bytes:
    """Fetch one tile from the upstream with our own headers only."""
    global _down_until
    if time.monotonic() < _down_until:
        raise TileUnavailable(_("map tiles are not available now"))
    url = current_app.config["TILE_URL"].format(z=z, x=x, y=y)
    headers = {"User-Agent": current_app.config["TILE_USER_AGENT"], "Accept": "image/png"}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=float(current_app.config["TILE_TIMEOUT_S"])
        ) as reply:
            body: bytes = reply.read(MAX_TILE_BYTES + 1)
    except (OSError, ValueError, urllib.error.URLError):
        with _down_lock:
            _down_until = time.monotonic() + float(current_app.config["TILE_RETRY_AFTER_S"])
        raise TileUnavailable(_("map tiles are not available now")) from None
    if len(body) > MAX_TILE_BYTES or not body.startswith(b"\x89PNG"):
        raise TileUnavailable(_("map tiles are not available now"))
    return body


def reset_upstream_state() -> None:
    """Forget a remembered upstream failure (for tests and after configuration changes)."""
    global _down_until
    _down_until = 0.0


@bp.get("/<z>/<x>/<y>.png")
def tile(z: str, x: str, y: str) -> Response:
    """Serve one map tile from the cache, fetching it from the upstream when needed."""
    if not current_app.config.get("TILE_URL"):
        raise NotFound(_("this service shows no map tiles"))
    zoom = _number(z, "z", int(current_app.config["TILE_MAX_ZOOM"]) + 1)
    column, row = _number(x, "x", 2**zoom), _number(y, "y", 2**zoom)
    path = tile_path(zoom, column, row)
    if _fresh(path):
        body = path.read_bytes()
    else:
        try:
            body = fetch_upstream(zoom, column, row)
        except TileUnavailable:
            if not path.exists():
                raise
            body = path.read_bytes()  # a stale tile beats no tile
        else:
            _store(path, body)
    response = Response(body, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=604800"
    return response
