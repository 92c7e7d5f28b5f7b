"""Rate limits keyed by a salted hash of the client address that rotates daily.

The hash is kept only in the limiter's memory (or Redis, which keeps nothing on disk when run
as documented); it is never written to the database or the logs. The day's salt is random and
lives as long as the process (in memory), or in the limiter's Redis for several workers, so
that every worker computes the same key for the same address; it expires after two days.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from flask import Flask, current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from werkzeug.wrappers import Response

from mapsvc.web.errors import handle_http_error

#: The endpoints each limit covers (POST only): sign-in steps, and report intake.
LOGIN_ENDPOINTS = ("auth.login_submit", "auth.second_factor_submit", "auth.invite_submit")
INTAKE_ENDPOINTS = ("api.create_report", "pages.report_submit")
SALT_TTL_S = 2 * 86400

_salts: dict[str, bytes] = {}


def _salt(day: str) -> bytes:
    """Return the salt of ``day`` (UTC), made at first use; yesterday's is forgotten."""
    if day not in _salts:
        _salts.clear()
        _salts[day] = secrets.token_bytes(32)
    return _salts[day]


class SaltStore(Protocol):
    """Where the day's salt lives when several processes must share it."""

    def set(self, name: str, value: bytes, *, nx: bool, ex: int) -> Any:
        """Set ``name`` unless it exists, expiring after ``ex`` seconds (redis-py's signature)."""

    def get(self, name: str) -> bytes | None:
        """Return the value of ``name``."""


class SharedSalts:
    """The day's salt kept in a shared store (Redis), cached in this process for the day."""

    def __init__(self, store: SaltStore) -> None:
        self.store = store
        self.cached: dict[str, bytes] = {}

    def __call__(self, day: str) -> bytes:
        """Return the salt of ``day``: the first worker to ask makes it, the others read it."""
        if day not in self.cached:
            name = f"mapsvc:address-salt:{day}"
            self.store.set(name, secrets.token_bytes(32), nx=True, ex=SALT_TTL_S)
            value = self.store.get(name)
            if not value:
                raise RuntimeError("the rate-limit store lost the day's salt")
            self.cached.clear()
            self.cached[day] = bytes(value)
        return self.cached[day]


def client_key() -> str:
    """Return today's opaque key for the requesting address (for limits and burst holds only)."""
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    address = (request.remote_addr or "").encode()
    salt = current_app.extensions.get("mapsvc.salts", _salt)(day)
    return hmac.new(salt, address, hashlib.sha256).hexdigest()[:32]


class HideLimitKeys(logging.Filter):
    """Keep Flask-Limiter's breach messages but drop the key (the hashed address) they name."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite 'ratelimit X (key) exceeded at endpoint: E' without the key."""
        if record.getMessage().startswith("ratelimit ") and isinstance(record.args, tuple) and len(record.args) == 3:
            record.msg, record.args = "ratelimit %s exceeded at endpoint: %s", (record.args[0], record.args[2])
        return True


def _shared_salts(uri: str) -> SharedSalts | None:
    """Return salts kept in Redis for a ``redis://`` limiter storage, else None (process memory)."""
    if not uri.startswith(("redis://", "rediss://")):
        return None
    import redis  # the optional "redis" extra

    # redis-py types get() as returning bytes or str, for clients of either decode_responses;
    # one made without decode_responses, as here, returns bytes, as SaltStore says.
    return SharedSalts(cast(SaltStore, redis.Redis.from_url(uri)))


def too_many_requests(error: RateLimitExceeded) -> tuple[Response | str, int, dict[str, str]]:
    """Answer 429 in the client's format, saying when the limit's window has passed."""
    body, status = handle_http_error(error)
    return body, status, {"Retry-After": str(error.limit.limit.get_expiry())}


def init_app(app: Flask) -> None:
    """Set up Flask-Limiter for this app and put the login and intake limits on their endpoints.

    Flask-Limiter's own headers stay off: they would replace the Retry-After of a 503.
    """
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    app.register_error_handler(RateLimitExceeded, too_many_requests)
    salts = _shared_salts(str(app.config["RATELIMIT_STORAGE_URI"]))
    if salts is not None:
        app.extensions["mapsvc.salts"] = salts
    limiter = Limiter(key_func=client_key, storage_uri=app.config["RATELIMIT_STORAGE_URI"])
    limiter.init_app(app)
    app.extensions["mapsvc.limiter"] = limiter
    limiter_log = logging.getLogger("flask-limiter")
    if not any(isinstance(f, HideLimitKeys) for f in limiter_log.filters):
        limiter_log.addFilter(HideLimitKeys())
    login = limiter.shared_limit(lambda: str(current_app.config["LOGIN_RATE_LIMIT"]), "login", methods=["POST"])
    intake = limiter.shared_limit(lambda: str(current_app.config["INTAKE_RATE_LIMIT"]), "intake", methods=["POST"])
    for endpoints, limit in ((LOGIN_ENDPOINTS, login), (INTAKE_ENDPOINTS, intake)):
        for endpoint in endpoints:
            # The limit is checked by the wrapper, so the wrapper must be what the route calls.
            app.view_functions[endpoint] = limit(app.view_functions[endpoint])  # type: ignore[assignment]
