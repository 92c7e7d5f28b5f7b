"""Configuration defaults. Override with ``MAPSVC_*`` environment variables or instance config."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

#: The checkout or installed tree: ``static/``, ``templates/`` and ``migrations/`` sit beside the package.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, Any] = {
    # Where the data lives; None means a SQLite file in the instance folder.
    "DATABASE_URL": None,
    # SQLite only: "FULL" syncs the write-ahead log at every commit, so an acknowledged report
    # survives a power cut; "NORMAL" syncs it at checkpoints only (faster on disks slow to sync;
    # the last reports before a power cut can be lost). See docs/deployment.md, "Durability and backups".
    "SQLITE_SYNCHRONOUS": "FULL",
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
    # The answer to a stored report leaves no sooner than this many milliseconds after the request
    # came, so its timing does not tell whether the report met an event the reporter cannot see.
    "INTAKE_ANSWER_MS": 200,
    "RETENTION_DAYS": 730,
    "LAYER_LIMIT_DEFAULT": 1000,
    "LAYER_LIMIT_MAX": 10000,
    "MAX_CONTENT_LENGTH": 16 * 1024,
    # Files advocates upload on /advocacy/data (districts, past documentation), held in memory.
    "UPLOAD_MAX_BYTES": 20 * 1024 * 1024,
    # Map tiles: fetched by the service from this upstream (empty: no tiles, a plain background),
    # cached on disk (default: the instance folder's tiles/), never fetched by the phone itself.
    "TILE_URL": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    "TILE_ATTRIBUTION": "© OpenStreetMap contributors",
    "TILE_CACHE_DIR": None,
    "TILE_CACHE_DAYS": 30,
    # The cache's bound: past it, the deepest tiles are deleted first (the oldest fetch day first
    # within a zoom level), never the overview's.
    "TILE_CACHE_MAX_MB": 512,
    # Only tiles meeting the service area's box widened by this margin, at these zoom levels, are
    # served (and the map pages keep to them); the upstream never hears of any other.
    "TILE_MARGIN_KM": 3,
    "TILE_MIN_ZOOM": 8,
    "TILE_MAX_ZOOM": 18,
    # The overview: zoom levels TILE_MIN_ZOOM to TILE_OVERVIEW_MAX_ZOOM, never evicted and fetched
    # under a budget of their own, so that no crawl of deep tiles takes the map away from anyone.
    # null: the deepest level at which the overview of the area is at most TILE_OVERVIEW_MAX_TILES
    # tiles (zoom 15, 1,089 tiles, for Bishkek and the margin); below TILE_MIN_ZOOM: no overview.
    "TILE_OVERVIEW_MAX_ZOOM": None,
    "TILE_OVERVIEW_MAX_TILES": 2000,
    # Tiles not in the cache, per client and for everyone (per worker with "memory://" storage):
    # past any, 429 (a kept tile is still served). OpenStreetMap's tile policy forbids bulk
    # downloads; "" turns a limit off. The overview's fetches count against TILE_OVERVIEW_RATE_LIMIT
    # for everyone and a count of TILE_MISS_RATE_LIMIT per client of their own; the deeper levels'
    # against TILE_MISS_RATE_LIMIT per client (and TILE_DEEP_MISS_RATE_LIMIT from TILE_DEEP_MIN_ZOOM,
    # where crawls go) and TILE_UPSTREAM_RATE_LIMIT for everyone. One client's day is an eighth of
    # everyone's: see docs/map.md for how many addresses spend it.
    "TILE_OVERVIEW_RATE_LIMIT": "60 per minute;600 per hour;4000 per day",
    "TILE_MISS_RATE_LIMIT": "60 per minute;600 per hour;2000 per day",
    "TILE_DEEP_MIN_ZOOM": 17,
    "TILE_DEEP_MISS_RATE_LIMIT": "30 per minute;300 per hour;1000 per day",
    "TILE_UPSTREAM_RATE_LIMIT": "240 per minute;2400 per hour;16000 per day",
    "TILE_TIMEOUT_S": 5,
    # Longest back-off after upstream failures in a row (the first is 2 s, then 4, 8, ...).
    "TILE_RETRY_AFTER_S": 60,
    "TILE_USER_AGENT": "mapsvc/0.1 (community safety map; tile proxy with on-disk cache)",
    # Where the quick-exit button and the Escape key send the phone (replacing this page).
    "QUICK_EXIT_URL": "https://www.google.com/",
    # Whether the quick exit first wipes what this phone keeps for mapsvc (receipts, the offline
    # queue, the published points reused for repeated places) and the tab's sessionStorage.
    "QUICK_EXIT_WIPES": True,
    # How often an open map fetches its layers again, in seconds.
    "MAP_REFRESH_S": 60,
    # A report the phone could not hand over (no connection, or the service answered 5xx, 408 or
    # 429) is tried again after a random wait of up to this many milliseconds, doubled with each
    # failure up to the cap (exponential backoff with full jitter), or as Retry-After asks.
    "REPORT_RETRY_BASE_MS": 2000,
    "REPORT_RETRY_MAX_MS": 300000,
    # How many events (the heaviest first) the map asks for per refresh: sized for 2G; the
    # status line says when more match, and the heat still counts them all.
    "MAP_EVENT_LIMIT": 400,
    # Strict-Transport-Security on answers over https (never over http): browsers that came once
    # keep to https this long, in seconds; 0 turns it off.
    "HSTS_MAX_AGE_S": 31536000,
    # Accounts. Sign-in cookies are Secure unless turned off (browsers accept Secure cookies on
    # http://localhost and 127.0.0.1); a Secure cookie gets the __Host- prefix.
    "SESSION_COOKIE_SECURE": True,
    "LOGIN_SESSION_HOURS": 12,
    # A password-only step waiting for its two-factor code lives this long.
    "LOGIN_PENDING_MINUTES": 5,
    # Wrong passwords per source address and username (Flask-Limiter syntax, clock windows):
    # past them, that pair's passwords are not checked until the window ends. No account is
    # ever locked for everyone ("" turns this off). See docs/accounts.md, "Passwords and sign-in".
    "LOGIN_FAILURE_LIMIT": "5 per 15 minutes;10 per hour;20 per day",
    # Wrong passwords per username over every source, from browsers without a device cookie for
    # it (set there by an earlier right password): guesses spread over many addresses share it,
    # and the owner, in a browser she signed in from before, is never held by it. "" turns it off.
    "LOGIN_ACCOUNT_FAILURE_LIMIT": "10 per hour;50 per day",
    # Wrong passwords per username from browsers with a device cookie for it, all together (each
    # entry has LOGIN_FAILURE_LIMIT of its own): however many entries someone holds, they add
    # this many. None: three times LOGIN_ACCOUNT_FAILURE_LIMIT. "" turns it off, and then device
    # cookies count for nothing.
    "LOGIN_KNOWN_DEVICE_FAILURE_LIMIT": None,
    # Wrong passwords on /account/confirm per account (the session names it): a signed-in phone
    # in other hands gets few guesses; the owner can sign out and in again.
    "CONFIRM_FAILURE_LIMIT": "3 per hour;6 per day",
    # Device cookies: how many days (1 to 400) a browser is remembered after a right password, and
    # the key their entries are made with (at least 32 characters), to be set only where several
    # hosts share one Redis. Never a default: unset, a key is made at random at start-up, and a
    # restart forgets every browser.
    "DEVICE_COOKIE_DAYS": 90,
    "DEVICE_COOKIE_SECRET": None,
    # Two-factor codes have a count of their own: past TOTP_MAX_FAILURES wrong codes in a row, each
    # further wrong one makes the account's codes wait twice as long, from TOTP_WAIT_MINUTES up to
    # TOTP_WAIT_MAX_MINUTES; only a right code starts again.
    "TOTP_MAX_FAILURES": 5,
    "TOTP_WAIT_MINUTES": 1,
    "TOTP_WAIT_MAX_MINUTES": 240,
    # The key TOTP secrets are sealed with at rest (AES-256-GCM): 32 random bytes in URL-safe
    # base64. Never a default: without it two-factor sign-in cannot be turned on. Keys that
    # sealed earlier secrets go in TOTP_ENCRYPTION_OLD_KEYS until `mapsvc accounts
    # encrypt-secrets` has sealed them again with the current one.
    "TOTP_ENCRYPTION_KEY": None,
    "TOTP_ENCRYPTION_OLD_KEYS": [],
    # Security changes (two-factor, password, API tokens, roles, accounts, invitations) need a
    # sign-in, or a confirmation with the password (and code), at most this many minutes old.
    "REAUTH_MINUTES": 5,
    "PASSWORD_MIN_LENGTH": 12,
    "INVITATION_MAX_DAYS": 30,
    # Staff roles (moderator, planner, advocate, admin) must use TOTP two-factor sign-in.
    "REQUIRE_STAFF_TOTP": False,
    # argon2 parameters: a profile of argon2.profiles (tests use "CHEAPEST").
    "ARGON2_PROFILE": "RFC_9106_LOW_MEMORY",
    # Rate limits (Flask-Limiter syntax), keyed by a daily-rotating salted hash of the address
    # (of its /64 network for IPv6).
    # Storage "memory://" serves one process; give a "redis://..." URI for several workers.
    # The salt comes from a secret made at random in memory at start-up; hosts that share one
    # Redis set the same LIMIT_KEY_SECRET (at least 32 characters) instead. Never a default.
    # TRUSTED_PROXIES: how many reverse proxies stand in front (0: none); with 1, the address is
    # the last X-Forwarded-For entry, which the proxy must overwrite (deploy/nginx/mapsvc.conf).
    "TRUSTED_PROXIES": 0,
    "LIMIT_KEY_SECRET": None,
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "memory://",
    "LOGIN_RATE_LIMIT": "10 per minute;60 per hour",
    "INTAKE_RATE_LIMIT": "30 per minute;300 per hour",
    # Reads of the map's data (/api/layers, /api/heat, the OGC API) by anonymous clients, per
    # address: a phone asks twice a minute and twice per move of the map; several phones behind
    # one carrier's address share it. Signed-in staff and API tokens are not limited; "" turns it off.
    "READ_RATE_LIMIT": "600 per minute;12000 per hour",
    # Burst hold: past this many reports from one source (the same hashed address) in the window,
    # its further reports wait for a moderator instead of appearing. Sized for many phones behind
    # one mobile carrier's address and for an offline queue sent at once; "" turns it off.
    "BURST_HOLD": "8 per hour",
    # The moderation queue lists published unverified events of this many recent days.
    "MODERATION_RECENT_DAYS": 7,
    # Queue cards per page on the moderator's phone page (the API lists the whole queue).
    "MODERATION_PAGE_SIZE": 20,
    # Answers to map reads are kept in memory (0 turns this off); reads of "now" are answered for
    # now rounded down to READ_CACHE_S seconds, so phones share answers. An answer is served for
    # READ_STALE_S seconds (0 to 60; 0 turns the cache off): changes show on the public map
    # within that time, except that a withdrawal or a moderator's decision drops the answers of
    # the worker that made it (and those shared in Redis) at once (mapsvc.web.readcache).
    "READ_CACHE_S": 10,
    "READ_CACHE_MB": 32,
    "READ_STALE_S": 5,
    # Route planning (planners): alpha weighs danger against distance (cost = length x (1 + alpha
    # x risk)); category weights say how strongly each kind of event is avoided (0 to 1); a piece
    # of street counts as "in danger" from this risk on (0.25: within the fuzz radius of one fresh
    # event of weight 1); points farther than ROUTE_MAX_SNAP_M from any street are refused.
    "ROUTE_ALPHA": 5.0,
    "ROUTE_ALPHA_MAX": 100.0,
    "ROUTE_CATEGORY_WEIGHTS": {
        "checkpoint": 1.0,
        "raid": 1.0,
        "detention": 1.0,
        "attack": 1.0,
        "patrol": 0.5,
        "extortion": 0.5,
        "robbery": 0.5,
        "other": 0.5,
    },
    "ROUTE_DANGER_THRESHOLD": 0.25,
    "ROUTE_WALK_SPEED_KMH": 4.5,
    "ROUTE_DRIVE_SPEED_KMH": 25.0,
    "ROUTE_MAX_SNAP_M": 300.0,
    "ROUTE_MAX_AHEAD_HOURS": 168,
    # Advocacy: H3 resolution of the count atoms (category x perpetrator x cell x month) that
    # every advocacy figure sums; 7 is about 5.2 km². Never finer than HEAT_RESOLUTION.
    "ADVOCACY_RESOLUTION": 7,
    # Tests inject these; production uses the system clock and a cryptographic source.
    "CLOCK": None,
    "FUZZ_RNG": None,
}
