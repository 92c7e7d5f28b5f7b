"""Configuration defaults. Override with ``MAPSVC_*`` environment variables or instance config."""

from __future__ import annotations

import math
from typing import Any

DEFAULTS: dict[str, Any] = {
    # Where the data lives; None means a SQLite file in the instance folder.
    "DATABASE_URL": None,
    # A city key (see mapsvc.core.area.CITIES), a [minLon, minLat, maxLon, maxLat] list,
    # or a GeoJSON Polygon/MultiPolygon mapping.
    "SERVICE_AREA": "bishkek",
    # IANA zone for times given without an offset (the plain form); default the city's, or UTC.
    "TIMEZONE": None,
    # Language for browsers that state no preference: "en", "ru" or "ky".
    "DEFAULT_LANGUAGE": "en",
    # Per-category policy overrides, e.g. {"raid": {"fuzz_radius_m": 400}}.
    "CATEGORY_OVERRIDES": {},
    # Geo-indistinguishability level: odds change at most e^level within a category's radius.
    "PRIVACY_LEVEL": math.log(4),
    "VISIBILITY_THRESHOLD": 0.05,
    "HEAT_RESOLUTION": 8,
    # Free text is kept only where the organisation turns it on.
    "STORE_DETAILS": False,
    "DETAILS_MAX_LENGTH": 1000,
    "CLOCK_SKEW_S": 300,
    "MAX_REPORT_AGE_DAYS": 365,
    "RETENTION_DAYS": 730,
    "LAYER_LIMIT_DEFAULT": 1000,
    "LAYER_LIMIT_MAX": 10000,
    "MAX_CONTENT_LENGTH": 16 * 1024,
    # Map tiles: fetched by the service from this upstream (empty: no tiles, a plain background),
    # cached on disk (default: the instance folder's tiles/), never fetched by the phone itself.
    "TILE_URL": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    "TILE_ATTRIBUTION": "© OpenStreetMap contributors",
    "TILE_CACHE_DIR": None,
    "TILE_CACHE_DAYS": 30,
    "TILE_MAX_ZOOM": 19,
    "TILE_TIMEOUT_S": 5,
    "TILE_RETRY_AFTER_S": 60,
    "TILE_USER_AGENT": "mapsvc/0.1 (community safety map; tile proxy with on-disk cache)",
    # Where the quick-exit button and the Escape key send the phone (replacing this page).
    "QUICK_EXIT_URL": "https://www.google.com/",
    # How often an open map fetches its layers again, in seconds.
    "MAP_REFRESH_S": 60,
    # How many events (the heaviest first) the map asks for per refresh: sized for 2G; the
    # status line says when more match, and the heat still counts them all.
    "MAP_EVENT_LIMIT": 400,
    # Tests inject these; production uses the system clock and a cryptographic source.
    "CLOCK": None,
    "FUZZ_RNG": None,
}
