"""The app's settings: every ``MAPSVC_*`` setting checked once, when the app is created, then read from here.

:func:`init_app` (called by :func:`mapsvc.create_app`, before the store, the web and the commands
are set up) builds one frozen :class:`Settings` from ``app.config``; a bad value stops start-up with a
ValueError that names the setting and what it may be, instead of a 500 at the first request
that reads it. Code reads settings through :func:`settings` only (templates through the
``settings`` global), never through ``app.config``; the groups hang from it:
``settings().routes``, ``.tiles``, ``.accounts``, ``.limits``, ``.read_cache``, ``.pages``,
``.moderation``, ``.http`` and ``.database``. ``mapsvc serve`` creates the app before gunicorn
forks its workers, so they all hold the same settings (and the same secrets made at random here).

Flask's and its extensions' own keys (``SECRET_KEY``, ``MAX_CONTENT_LENGTH``, ``SESSION_COOKIE_*``,
``RATELIMIT_*``, ``BABEL_*``) stay where Flask and the extensions read them. Those among mapsvc's
defaults (mapsvc/config.py) are checked here too, and where mapsvc's own code depends on one, it
reads it from here: ``MAX_CONTENT_LENGTH`` (checked only; Flask applies it),
``SESSION_COOKIE_SECURE`` (the Secure flag and names of mapsvc's own cookies,
``settings().accounts.secure_cookies``), and ``RATELIMIT_ENABLED``, ``RATELIMIT_STORAGE_URI`` and
``RATELIMIT_KEY_PREFIX`` (mapsvc's own counts in the limiter's store: burst holds, wrong
passwords, tile budgets, the shared read cache; ``settings().limits``). Nothing changes
``app.config`` after start-up, so both readers see the same values.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from argon2 import Parameters
from argon2 import profiles as argon2_profiles
from flask import Flask, current_app
from limits import parse_many

from mapsvc.core.area import CITIES, ServiceArea
from mapsvc.core.fuzz import UniformSource, system_random
from mapsvc.core.geodesy import Box
from mapsvc.core.heat import DEFAULT_ATOM_RESOLUTION
from mapsvc.core.policy import CategoryPolicy, build_policies
from mapsvc.core.tilegrid import (
    DEEPEST_ZOOM,
    LOW_WATER,
    OVERVIEW_TILE_BYTES,
    TileView,
    overview_depth,
    widened,
)

#: The languages the app is translated into (``DEFAULT_LANGUAGE`` is one of them).
LANGUAGES = ("ru", "ky", "en")
#: ``PRAGMA synchronous`` levels a SQLite store may run with (``SQLITE_SYNCHRONOUS``). In WAL mode,
#: FULL syncs the log at every commit, so a committed (acknowledged) report survives a power cut;
#: NORMAL syncs it only at checkpoints, so the last commits before a power cut can be lost (never
#: to a process crash). EXTRA differs from FULL only in rollback-journal mode, so it is not offered.
SQLITE_SYNCHRONOUS_LEVELS = ("FULL", "NORMAL")
#: Shortest ``LIMIT_KEY_SECRET`` and ``DEVICE_COOKIE_SECRET`` accepted, in characters.
SECRET_MIN_LENGTH = 32
#: Most days a browser is remembered by its device cookie (browsers keep a cookie at most 400 days).
DEVICE_COOKIE_MAX_DAYS = 400
#: Longest ``READ_STALE_S`` accepted, in seconds: the map refreshes every minute.
MAX_STALE_S = 60
#: Longest password accepted (``PASSWORD_MIN_LENGTH`` may not pass it).
PASSWORD_MAX_LENGTH = 256

Config = Mapping[str, Any]


def utc_now() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


# --- reading one setting, checked ------------------------------------------------------------------


def _get(config: Config, name: str) -> Any:
    """Return setting ``name`` as given (None when absent), to be checked."""
    return config.get(name)


def _is_number(value: object) -> bool:
    """Return whether ``value`` is a finite int or float (a bool is no number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _span(low: float, high: float | None) -> str:
    return f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"


def _whole(config: Config, name: str, low: int, high: int | None = None, what: str = "a whole number") -> int:
    """Return setting ``name``, a whole number from ``low`` to ``high`` (no bound above when None)."""
    value = _get(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {what} {_span(low, high)}, not {value!r}")
    return value


def _number(
    config: Config, name: str, low: float, high: float | None = None, what: str = "a number", above: bool = False
) -> float:
    """Return setting ``name``, a number from ``low`` (above it, with ``above``) to ``high``."""
    value = _get(config, name)
    if _is_number(value) and (value > low if above else value >= low) and (high is None or value <= high):
        return float(value)
    span = f"above {low:g}" + (f" and at most {high:g}" if high is not None else "") if above else _span(low, high)
    raise ValueError(f"{name} must be {what} {span}, not {value!r}")


def _flag(config: Config, name: str) -> bool:
    """Return setting ``name``, true or false: "False" or "no" would be a true string, and a typo unnoticed."""
    value = _get(config, name)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def _text(config: Config, name: str, what: str, empty: bool = False) -> str:
    """Return setting ``name``, a string (None is "" where ``empty`` allows it)."""
    value = _get(config, name)
    if value is None and empty:
        return ""
    if not isinstance(value, str) or not (value or empty):
        raise ValueError(f"{name} must be {what}")
    return value


def _limit(config: Config, name: str, single: bool = False) -> str:
    """Return setting ``name``, rate limits in Flask-Limiter syntax, or "" where it is off ("" or None)."""
    value = _get(config, name)
    if value is None or value == "":
        return ""
    what = 'one limit such as "8 per hour"' if single else 'limits such as "10 per minute;100 per hour"'
    message = f'{name} must be {what} (Flask-Limiter syntax), or "" to turn it off, not {value!r}'
    if not isinstance(value, str):
        raise ValueError(message)
    try:
        items = parse_many(value)
    except ValueError:
        raise ValueError(message) from None
    if not items or (single and len(items) > 1):
        raise ValueError(message)
    return value


def key_secret(config: Config, name: str = "LIMIT_KEY_SECRET") -> bytes:
    """Return the secret setting ``name`` if set (hosts sharing one Redis), else a new random secret.

    Made at random here, the secret lives in this process's memory only (and in the workers
    gunicorn forks from it): a restart makes a new one.
    """
    configured = _get(config, name)
    if configured is None or configured == "":
        return secrets.token_bytes(32)
    if not isinstance(configured, str) or len(configured) < SECRET_MIN_LENGTH:
        raise ValueError(f"{name} must be a string of at least {SECRET_MIN_LENGTH} characters")
    return configured.encode()


def parse_key(value: object, name: str = "TOTP_ENCRYPTION_KEY") -> bytes:
    """Return the 32 bytes of a key given as URL-safe base64, or raise ValueError naming the setting."""
    try:
        key = base64.urlsafe_b64decode(str(value).encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        key = b""
    if len(key) != 32:
        raise ValueError(f"{name} must be 32 random bytes in URL-safe base64 (44 characters); see docs/accounts.md")
    return key


# --- the groups -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the data lives (``DATABASE_URL``) and, for SQLite, how often it syncs (``SQLITE_SYNCHRONOUS``).

    The URL may hold the database's password: it is left out of the repr.
    """

    url: str = field(repr=False)
    sqlite_synchronous: str

    @classmethod
    def from_config(cls, config: Config) -> DatabaseSettings:
        """Build and check the settings; raise ValueError naming the bad one."""
        url = _text(config, "DATABASE_URL", "a database URL, e.g. postgresql+psycopg://... or sqlite:///path")
        level = _get(config, "SQLITE_SYNCHRONOUS")
        if not isinstance(level, str) or level.upper() not in SQLITE_SYNCHRONOUS_LEVELS:
            raise ValueError(f"SQLITE_SYNCHRONOUS must be one of {', '.join(SQLITE_SYNCHRONOUS_LEVELS)}")
        return cls(url=url, sqlite_synchronous=level.upper())


@dataclass(frozen=True)
class PageSettings:
    """What the pages and the phone's scripts are given: language, quick exit, refresh and retries."""

    default_language: str
    quick_exit_url: str
    quick_exit_wipes: bool
    refresh_s: int
    event_limit: int
    retry_base_ms: int
    retry_max_ms: int

    @classmethod
    def from_config(cls, config: Config, layer_limit_max: int) -> PageSettings:
        """Build and check the settings; raise ValueError naming the bad one."""
        language = _get(config, "DEFAULT_LANGUAGE")
        if language not in LANGUAGES:
            raise ValueError(f"DEFAULT_LANGUAGE must be one of {', '.join(LANGUAGES)}, not {language!r}")
        exit_url = _get(config, "QUICK_EXIT_URL")
        if not isinstance(exit_url, str) or not exit_url.startswith(("https://", "http://")):
            raise ValueError("QUICK_EXIT_URL must be a web address starting with https:// (or http://)")
        base = _whole(config, "REPORT_RETRY_BASE_MS", 1, 3_600_000, "a whole number of milliseconds")
        return cls(
            default_language=str(language),
            quick_exit_url=exit_url,
            quick_exit_wipes=_flag(config, "QUICK_EXIT_WIPES"),
            refresh_s=_whole(config, "MAP_REFRESH_S", 1, 86_400, "a whole number of seconds"),
            # More than /api/layers accepts would make every refresh of the map a 400.
            event_limit=_whole(
                config, "MAP_EVENT_LIMIT", 1, layer_limit_max, "a whole number (at most LAYER_LIMIT_MAX)"
            ),
            retry_base_ms=base,
            retry_max_ms=_whole(
                config,
                "REPORT_RETRY_MAX_MS",
                base,
                86_400_000,
                "a whole number of milliseconds (REPORT_RETRY_BASE_MS or more)",
            ),
        )


@dataclass(frozen=True)
class ModerationSettings:
    """The moderation queue: how many recent days of unverified events, and cards per page."""

    recent: timedelta
    page_size: int

    @classmethod
    def from_config(cls, config: Config) -> ModerationSettings:
        """Build and check the settings; raise ValueError naming the bad one."""
        return cls(
            recent=timedelta(days=_whole(config, "MODERATION_RECENT_DAYS", 0, 3650, "a whole number of days")),
            page_size=_whole(config, "MODERATION_PAGE_SIZE", 1, 1000, "a whole number of cards"),
        )


@dataclass(frozen=True)
class HttpSettings:
    """How the service meets HTTP: proxies in front, Strict-Transport-Security, the bodies' limits.

    ``max_content_length`` is Flask's ``MAX_CONTENT_LENGTH``, which Flask applies itself (checked
    here, so that a bad one stops start-up rather than every request with a body).
    """

    trusted_proxies: int
    hsts_max_age_s: int
    max_content_length: int
    upload_max_bytes: int

    @classmethod
    def from_config(cls, config: Config) -> HttpSettings:
        """Build and check the settings; raise ValueError naming the bad one."""
        hops = _get(config, "TRUSTED_PROXIES") or 0
        if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
            raise ValueError("TRUSTED_PROXIES must be a whole number of proxies, 0 or more")
        return cls(
            trusted_proxies=hops,
            hsts_max_age_s=_whole(config, "HSTS_MAX_AGE_S", 0, None, "a whole number of seconds"),
            max_content_length=_whole(config, "MAX_CONTENT_LENGTH", 1, None, "a whole number of bytes"),
            upload_max_bytes=_whole(config, "UPLOAD_MAX_BYTES", 1, None, "a whole number of bytes"),
        )


@dataclass(frozen=True)
class ReadCacheSettings:
    """The read cache: the rounding of "now" (``quantum_s``), its memory bound, how long an answer is served."""

    quantum_s: int
    megabytes: float
    stale_s: float

    @property
    def enabled(self) -> bool:
        """Return whether answers are kept at all (each setting at 0 turns the cache off)."""
        return self.quantum_s > 0 and self.megabytes > 0 and self.stale_s > 0

    @classmethod
    def from_config(cls, config: Config) -> ReadCacheSettings:
        """Build and check the settings; raise ValueError naming the bad one."""
        seconds, megabytes, stale = (_get(config, name) for name in ("READ_CACHE_S", "READ_CACHE_MB", "READ_STALE_S"))
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int)
            or not _is_number(megabytes)
            or seconds < 0
            or megabytes < 0
        ):
            raise ValueError("READ_CACHE_S must be a whole number of seconds >= 0 and READ_CACHE_MB a number >= 0")
        if not _is_number(stale) or not 0 <= stale <= MAX_STALE_S:
            raise ValueError(f"READ_STALE_S must be a number of seconds from 0 to {MAX_STALE_S}")
        return cls(quantum_s=seconds, megabytes=float(megabytes), stale_s=float(stale))


def _zoom(value: object, low: int, high: int) -> bool:
    """Return whether ``value`` is a whole number (not a bool) from ``low`` to ``high``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


@dataclass(frozen=True)
class TileSettings:
    """Map tiles: the upstream, the cache, and what the map may show (``view``).

    ``url`` is "" where the service shows no tiles; it may hold a tile provider's key, and is left
    out of the repr. The rate limits of tile fetches are ``settings().limits``'s, with the other
    counts in the limiter's store.
    """

    url: str = field(repr=False)
    attribution: str
    user_agent: str
    timeout_s: float
    retry_after_s: float
    cache_dir: Path
    cache_days: float
    cache_max_mb: float
    deep_min_zoom: int
    view: TileView

    @classmethod
    def from_config(cls, config: Config, bounds: Box, instance_path: str | Path) -> TileSettings:
        """Build and check the settings (the overview within the cache's bound); raise ValueError naming the bad one."""
        url = _tile_url(_get(config, "TILE_URL"))
        low, high = _get(config, "TILE_MIN_ZOOM"), _get(config, "TILE_MAX_ZOOM")
        if not (_zoom(low, 0, DEEPEST_ZOOM) and _zoom(high, low, DEEPEST_ZOOM)):
            raise ValueError(
                f"TILE_MIN_ZOOM and TILE_MAX_ZOOM must be whole numbers, 0 <= min <= max <= {DEEPEST_ZOOM}"
            )
        overview = _get(config, "TILE_OVERVIEW_MAX_ZOOM")
        if overview is not None and not _zoom(overview, -1, DEEPEST_ZOOM):
            raise ValueError("TILE_OVERVIEW_MAX_ZOOM must be null or a zoom level (below TILE_MIN_ZOOM: no overview)")
        max_tiles = _get(config, "TILE_OVERVIEW_MAX_TILES")
        if not _zoom(max_tiles, 0, 10**6):
            raise ValueError("TILE_OVERVIEW_MAX_TILES must be a whole number of tiles from 0 to 1000000")
        deep = _get(config, "TILE_DEEP_MIN_ZOOM")
        if not _zoom(deep, 0, DEEPEST_ZOOM + 1):
            raise ValueError("TILE_DEEP_MIN_ZOOM must be a zoom level")
        margin_km = _get(config, "TILE_MARGIN_KM")
        if not _is_number(margin_km) or not 0 <= margin_km <= 1000:
            raise ValueError("TILE_MARGIN_KM must be a number of kilometres from 0 to 1000")
        max_mb = _get(config, "TILE_CACHE_MAX_MB")
        if not _is_number(max_mb) or not max_mb > 0:
            raise ValueError("TILE_CACHE_MAX_MB must be a number of megabytes above 0")
        box = widened(bounds, float(margin_km) * 1000)
        if overview is None:
            overview = overview_depth(box, low, high, max_tiles)
        view = TileView(box, low, high, min(overview, high))
        if url:
            _check_overview_fits(view, float(max_mb))
        folder = _get(config, "TILE_CACHE_DIR") or Path(instance_path) / "tiles"
        if not isinstance(folder, str | Path):
            raise ValueError("TILE_CACHE_DIR must be a folder's path, or null for the instance folder's tiles/")
        return cls(
            url=url,
            attribution=_text(config, "TILE_ATTRIBUTION", "the tiles' attribution text", empty=True),
            user_agent=_text(
                config, "TILE_USER_AGENT", "a User-Agent naming this service (tile providers' policies ask for one)"
            ),
            timeout_s=_number(config, "TILE_TIMEOUT_S", 0, 300, "a number of seconds", above=True),
            retry_after_s=_number(config, "TILE_RETRY_AFTER_S", 0, 86_400, "a number of seconds"),
            cache_dir=Path(folder),
            cache_days=_number(config, "TILE_CACHE_DAYS", 0, None, "a number of days", above=True),
            cache_max_mb=float(max_mb),
            deep_min_zoom=deep,
            view=view,
        )


def _tile_url(value: object) -> str:
    """Return ``TILE_URL``: "" (no tiles), or an http(s) address with ``{z}``, ``{x}`` and ``{y}``."""
    if value is None or value == "":
        return ""
    message = 'TILE_URL must be an http(s) address with {z}, {x} and {y} (and no other {...}), or "" for no tiles'
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ValueError(message)
    if not all(part in value for part in ("{z}", "{x}", "{y}")):
        raise ValueError(message)
    try:
        value.format(z=0, x=0, y=0)
    except (KeyError, IndexError, ValueError):
        raise ValueError(message) from None
    return value


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


@dataclass(frozen=True)
class AccountSettings:
    """Accounts: passwords, sessions and their cookies, invitations, device cookies, two-factor codes.

    ``secure_cookies`` is Flask's ``SESSION_COOKIE_SECURE``, which mapsvc's own cookies (the
    sign-in session, the device cookie) follow too. The secrets are left out of the repr.
    """

    argon2_profile: str
    password_min_length: int
    require_staff_totp: bool
    secure_cookies: bool
    session_lifetime: timedelta
    pending_lifetime: timedelta
    reauth: timedelta
    invitation_max_days: int
    device_cookie_days: int
    totp_max_failures: int
    totp_wait_base: timedelta
    totp_wait_max: timedelta
    device_cookie_secret: bytes = field(repr=False)
    #: The current TOTP key first, then the older ones; empty where ``TOTP_ENCRYPTION_KEY`` is not set.
    totp_keys: tuple[bytes, ...] = field(repr=False)

    @classmethod
    def from_config(cls, config: Config) -> AccountSettings:
        """Build and check the settings; raise ValueError naming the bad one."""
        profile = _get(config, "ARGON2_PROFILE")
        if not isinstance(profile, str) or not isinstance(getattr(argon2_profiles, profile, None), Parameters):
            raise ValueError(f"ARGON2_PROFILE {profile!r} is not a profile of argon2.profiles")
        days = _get(config, "DEVICE_COOKIE_DAYS")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= DEVICE_COOKIE_MAX_DAYS:
            raise ValueError(
                f"DEVICE_COOKIE_DAYS must be a whole number of days from 1 to {DEVICE_COOKIE_MAX_DAYS}, not {days!r}"
            )
        wait_base = _number(config, "TOTP_WAIT_MINUTES", 0, None, "a number of minutes", above=True)
        wait_max = _number(
            config, "TOTP_WAIT_MAX_MINUTES", wait_base, None, "a number of minutes (TOTP_WAIT_MINUTES or more)"
        )
        return cls(
            argon2_profile=profile,
            password_min_length=_whole(
                config, "PASSWORD_MIN_LENGTH", 1, PASSWORD_MAX_LENGTH, "a whole number of characters"
            ),
            require_staff_totp=_flag(config, "REQUIRE_STAFF_TOTP"),
            secure_cookies=_flag(config, "SESSION_COOKIE_SECURE"),
            session_lifetime=timedelta(
                hours=_number(config, "LOGIN_SESSION_HOURS", 0, 24 * 400, "a number of hours", above=True)
            ),
            pending_lifetime=timedelta(
                minutes=_number(config, "LOGIN_PENDING_MINUTES", 0, 24 * 60, "a number of minutes", above=True)
            ),
            reauth=timedelta(minutes=_number(config, "REAUTH_MINUTES", 0, 24 * 60, "a number of minutes", above=True)),
            invitation_max_days=_whole(config, "INVITATION_MAX_DAYS", 1, 3650, "a whole number of days"),
            device_cookie_days=days,
            totp_max_failures=_whole(config, "TOTP_MAX_FAILURES", 0, 1000, "a whole number of wrong codes"),
            totp_wait_base=timedelta(minutes=wait_base),
            totp_wait_max=timedelta(minutes=wait_max),
            device_cookie_secret=key_secret(config, "DEVICE_COOKIE_SECRET"),
            totp_keys=_totp_keys(config),
        )


def _totp_keys(config: Config) -> tuple[bytes, ...]:
    """Return ``TOTP_ENCRYPTION_KEY`` and then ``TOTP_ENCRYPTION_OLD_KEYS``, decoded; () when no key is set."""
    current, old = _get(config, "TOTP_ENCRYPTION_KEY"), _get(config, "TOTP_ENCRYPTION_OLD_KEYS") or []
    if isinstance(old, str) or not isinstance(old, list | tuple):
        raise ValueError("TOTP_ENCRYPTION_OLD_KEYS must be a list of keys")
    old_keys = tuple(parse_key(k, "TOTP_ENCRYPTION_OLD_KEYS") for k in old)
    return (parse_key(current), *old_keys) if current else ()


@dataclass(frozen=True)
class LimitSettings:
    """Rate limits, burst holds and the budgets of wrong passwords, and the store they count in.

    Each limit is in Flask-Limiter syntax, "" where it is off; the attributes are named as the
    settings are (``intake_rate_limit`` is ``INTAKE_RATE_LIMIT``). ``enabled``, ``storage_uri``
    and ``key_prefix`` are Flask-Limiter's ``RATELIMIT_ENABLED``, ``RATELIMIT_STORAGE_URI`` and
    ``RATELIMIT_KEY_PREFIX``, which mapsvc's own counts follow too. ``key_secret`` is
    ``LIMIT_KEY_SECRET``, or random for this process's life; it and the storage URI, which may hold
    Redis's password, are left out of the repr.
    """

    enabled: bool
    storage_uri: str = field(repr=False)
    key_prefix: str
    login_rate_limit: str
    intake_rate_limit: str
    read_rate_limit: str
    burst_hold: str
    tile_overview_rate_limit: str
    tile_miss_rate_limit: str
    tile_deep_miss_rate_limit: str
    tile_upstream_rate_limit: str
    login_failure_limit: str
    login_account_failure_limit: str
    #: None where unset: three times ``login_account_failure_limit`` (mapsvc.web.auth.guessing).
    login_known_device_failure_limit: str | None
    confirm_failure_limit: str
    key_secret: bytes = field(repr=False)

    @property
    def in_memory(self) -> bool:
        """Return whether the counts live in this process's memory (``memory://``)."""
        return self.storage_uri.startswith("memory:")

    @classmethod
    def from_config(cls, config: Config) -> LimitSettings:
        """Build and check the settings; raise ValueError naming the bad one."""
        uri = _get(config, "RATELIMIT_STORAGE_URI")
        if not isinstance(uri, str) or "://" not in uri:
            # Not echoed: a mistyped URI may still hold Redis's password.
            raise ValueError("RATELIMIT_STORAGE_URI must be a storage URI such as memory:// or redis://host:6379/0")
        prefix = _get(config, "RATELIMIT_KEY_PREFIX") or ""
        if isinstance(prefix, bool) or not isinstance(prefix, str | int):
            raise ValueError("RATELIMIT_KEY_PREFIX must be a string")
        prefix = str(prefix)  # MAPSVC_RATELIMIT_KEY_PREFIX=123 comes as a number: Flask reads the environment as JSON
        known = _get(config, "LOGIN_KNOWN_DEVICE_FAILURE_LIMIT")
        return cls(
            enabled=_flag(config, "RATELIMIT_ENABLED"),
            storage_uri=uri,
            key_prefix=prefix,
            login_rate_limit=_limit(config, "LOGIN_RATE_LIMIT"),
            intake_rate_limit=_limit(config, "INTAKE_RATE_LIMIT"),
            read_rate_limit=_limit(config, "READ_RATE_LIMIT"),
            burst_hold=_limit(config, "BURST_HOLD", single=True),
            tile_overview_rate_limit=_limit(config, "TILE_OVERVIEW_RATE_LIMIT"),
            tile_miss_rate_limit=_limit(config, "TILE_MISS_RATE_LIMIT"),
            tile_deep_miss_rate_limit=_limit(config, "TILE_DEEP_MISS_RATE_LIMIT"),
            tile_upstream_rate_limit=_limit(config, "TILE_UPSTREAM_RATE_LIMIT"),
            login_failure_limit=_limit(config, "LOGIN_FAILURE_LIMIT"),
            login_account_failure_limit=_limit(config, "LOGIN_ACCOUNT_FAILURE_LIMIT"),
            login_known_device_failure_limit=None
            if known is None
            else _limit(config, "LOGIN_KNOWN_DEVICE_FAILURE_LIMIT"),
            confirm_failure_limit=_limit(config, "CONFIRM_FAILURE_LIMIT"),
            key_secret=key_secret(config),
        )


@dataclass(frozen=True)
class RouteSettings:
    """The route planning configuration, checked once at start-up."""

    alpha: float
    alpha_max: float
    weights: Mapping[str, float]
    threshold: float
    speeds_kmh: Mapping[str, float]
    max_snap_m: float
    max_ahead: timedelta

    @classmethod
    def from_config(cls, config: Config) -> RouteSettings:
        """Build and check the settings; raise ValueError naming the bad one."""
        given = _get(config, "ROUTE_CATEGORY_WEIGHTS")
        if not isinstance(given, Mapping) or not all(_is_number(w) for w in given.values()):
            raise ValueError("ROUTE_CATEGORY_WEIGHTS must map categories to weights from 0 to 1")
        weights = {str(k): float(v) for k, v in given.items()}
        if any(not 0 <= w <= 1 for w in weights.values()):
            raise ValueError("ROUTE_CATEGORY_WEIGHTS must lie between 0 and 1")
        alpha, alpha_max = _get(config, "ROUTE_ALPHA"), _get(config, "ROUTE_ALPHA_MAX")
        if not (_is_number(alpha) and _is_number(alpha_max) and 0 <= alpha <= alpha_max):
            raise ValueError("ROUTE_ALPHA must lie between 0 and ROUTE_ALPHA_MAX")
        for name in ("ROUTE_DANGER_THRESHOLD", "ROUTE_WALK_SPEED_KMH", "ROUTE_DRIVE_SPEED_KMH", "ROUTE_MAX_SNAP_M"):
            if not (_is_number(_get(config, name)) and config[name] > 0):
                raise ValueError(
                    f"{name} must be a positive number (ROUTE_DANGER_THRESHOLD, the ROUTE_*_SPEED_KMH and "
                    "ROUTE_MAX_SNAP_M must be positive)"
                )
        return cls(
            alpha=float(alpha),
            alpha_max=float(alpha_max),
            weights=weights,
            threshold=float(config["ROUTE_DANGER_THRESHOLD"]),
            speeds_kmh={"walk": float(config["ROUTE_WALK_SPEED_KMH"]), "drive": float(config["ROUTE_DRIVE_SPEED_KMH"])},
            max_snap_m=float(config["ROUTE_MAX_SNAP_M"]),
            max_ahead=timedelta(
                hours=_number(config, "ROUTE_MAX_AHEAD_HOURS", 0, 24 * 3660, "a number of hours", above=True)
            ),
        )

    def speed_m_s(self, mode: str) -> float:
        """Return the travel speed of ``mode`` in metres per second."""
        return self.speeds_kmh[mode] / 3.6


# --- the settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Every setting, checked once at start-up: the reports' and map's rules here, the rest in groups."""

    policies: dict[str, CategoryPolicy]
    area: ServiceArea
    timezone: ZoneInfo
    level: float
    threshold: float
    heat_resolution: int
    #: ``ADVOCACY_RESOLUTION`` as set (the atoms are never finer than the heat: mapsvc.services.advocacy.evidence).
    advocacy_resolution: int
    store_details: bool
    details_max_length: int
    clock_skew: timedelta
    max_report_age: timedelta
    retention: timedelta
    layer_limit_default: int
    layer_limit_max: int
    intake_answer_s: float
    clock: Callable[[], datetime]
    rng: UniformSource
    database: DatabaseSettings
    pages: PageSettings
    moderation: ModerationSettings
    http: HttpSettings
    read_cache: ReadCacheSettings
    tiles: TileSettings
    accounts: AccountSettings
    limits: LimitSettings
    routes: RouteSettings

    def now(self) -> datetime:
        """Return the current time from the configured clock."""
        return self.clock()


def _timezone(config: Config) -> ZoneInfo:
    name = _get(config, "TIMEZONE")
    if not name:
        area = _get(config, "SERVICE_AREA")
        name = CITIES[area].timezone if isinstance(area, str) and area in CITIES else "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"TIMEZONE {name!r} is not a known IANA time zone") from None


def _named(name: str, build: Callable[[Any], Any], value: Any) -> Any:
    """Return ``build(value)``, its ValueError saying which setting it was about."""
    try:
        return build(value)
    except (ValueError, TypeError, AttributeError) as error:
        text = str(error)
        raise ValueError(text if name in text else f"{name}: {text}") from None


def from_config(config: Config, instance_path: str | Path = "instance") -> Settings:
    """Build and check every setting; raise ValueError naming the bad setting and what it may be.

    ``instance_path`` is the app's instance folder, where the tile cache lives unless
    ``TILE_CACHE_DIR`` says otherwise.
    """
    level = _get(config, "PRIVACY_LEVEL")
    if not (_is_number(level) and level > 0):
        raise ValueError("PRIVACY_LEVEL must be a positive number")
    threshold = _get(config, "VISIBILITY_THRESHOLD")
    if not (_is_number(threshold) and 0 < threshold < 1):
        raise ValueError("VISIBILITY_THRESHOLD must lie between 0 and 1")
    intake_answer_ms = _get(config, "INTAKE_ANSWER_MS")
    if not (_is_number(intake_answer_ms) and 0 <= intake_answer_ms <= 10_000):
        raise ValueError("INTAKE_ANSWER_MS must lie between 0 and 10000")
    resolution = _get(config, "HEAT_RESOLUTION") or DEFAULT_ATOM_RESOLUTION
    if not _zoom(resolution, 4, 10):
        raise ValueError("HEAT_RESOLUTION must lie between 4 and 10")
    clock = _get(config, "CLOCK")
    if clock is not None and not callable(clock):
        raise ValueError("CLOCK must be null, or (in tests) a function returning the time")
    rng = _get(config, "FUZZ_RNG")
    if rng is not None and not callable(getattr(rng, "random", None)):
        raise ValueError("FUZZ_RNG must be null, or (in tests) a random source with a random() method")
    area: ServiceArea = _named("SERVICE_AREA", ServiceArea.from_config, _get(config, "SERVICE_AREA"))
    overrides = _get(config, "CATEGORY_OVERRIDES") or {}
    if not isinstance(overrides, Mapping):
        raise ValueError(
            'CATEGORY_OVERRIDES must map categories to policy changes, e.g. {"raid": {"fuzz_radius_m": 400}}'
        )
    layer_limit_max = _whole(config, "LAYER_LIMIT_MAX", 1, 10**6, "a whole number of events")
    return Settings(
        policies=_named("CATEGORY_OVERRIDES", build_policies, overrides),
        area=area,
        timezone=_timezone(config),
        level=float(level),
        threshold=float(threshold),
        heat_resolution=resolution,
        advocacy_resolution=_whole(config, "ADVOCACY_RESOLUTION", 0, 15, "an H3 resolution"),
        store_details=_flag(config, "STORE_DETAILS"),
        details_max_length=_whole(config, "DETAILS_MAX_LENGTH", 1, 100_000, "a whole number of characters"),
        clock_skew=timedelta(seconds=_whole(config, "CLOCK_SKEW_S", 0, 86_400, "a whole number of seconds")),
        max_report_age=timedelta(days=_whole(config, "MAX_REPORT_AGE_DAYS", 1, 36_500, "a whole number of days")),
        retention=timedelta(days=_whole(config, "RETENTION_DAYS", 1, 36_500, "a whole number of days")),
        layer_limit_default=_whole(
            config, "LAYER_LIMIT_DEFAULT", 1, layer_limit_max, "a whole number of events (at most LAYER_LIMIT_MAX)"
        ),
        layer_limit_max=layer_limit_max,
        intake_answer_s=float(intake_answer_ms) / 1000,
        clock=clock or utc_now,
        rng=rng or system_random(),
        database=DatabaseSettings.from_config(config),
        pages=PageSettings.from_config(config, layer_limit_max),
        moderation=ModerationSettings.from_config(config),
        http=HttpSettings.from_config(config),
        read_cache=ReadCacheSettings.from_config(config),
        tiles=TileSettings.from_config(config, area.bounds, instance_path),
        accounts=AccountSettings.from_config(config),
        limits=LimitSettings.from_config(config),
        routes=RouteSettings.from_config(config),
    )


@dataclass(frozen=True)
class TemplateSettings:
    """What templates read of the settings: the pages' own, and nothing secret or naming a server."""

    pages: PageSettings
    password_min_length: int


def init_app(app: Flask) -> None:
    """Check every setting and keep the settings on the app (and offer the pages' few to every template)."""
    made = app.extensions["mapsvc.settings"] = from_config(app.config, app.instance_path)
    app.jinja_env.globals["settings"] = TemplateSettings(made.pages, made.accounts.password_min_length)


def settings() -> Settings:
    """Return the current app's settings."""
    value: Settings = current_app.extensions["mapsvc.settings"]
    return value
