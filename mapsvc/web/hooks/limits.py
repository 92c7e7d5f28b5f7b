"""Rate limits keyed by a hash of the client address under a salt that changes every UTC day.

The key is ``HMAC(day's salt, address)`` and the day's salt is ``HMAC(secret, day)``. An IPv6
client counts by its /64, the block a subscriber is given (:func:`source_of`). The secret
is made at random when the app is created (``mapsvc serve`` creates it before gunicorn forks its
workers, so they all share it) or, for several hosts sharing one Redis, read from
``LIMIT_KEY_SECRET`` (both by :mod:`mapsvc.settings`). It is kept in this process's memory only:
neither the secret nor a salt is ever written to the limiter's store, the database or the logs,
so a seized Redis holds keys that cannot be turned back into addresses by trying all of them, and
keys of different days cannot be linked. A memory image of the running server does hold the
secret (see docs/accounts.md, "Rate limits").

Behind a reverse proxy, ``TRUSTED_PROXIES`` (the number of proxies in front) makes the address
the one the nearest proxy saw, read from ``X-Forwarded-For`` (werkzeug's ProxyFix); nothing else
from the proxy is trusted. Counts live in fixed windows of the clock (:mod:`mapsvc.web.hooks.windows`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from datetime import UTC, datetime

from flask import Flask, current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from mapsvc.core.roles import Role
from mapsvc.settings import Settings
from mapsvc.web.auth.identity import current_identity
from mapsvc.web.hooks import batched_windows, memory_limits, windows
from mapsvc.web.hooks.errors import handle_http_error

#: "memory://" is this storage, not the library's (registered when its module is imported).
MEMORY_STORAGE = memory_limits.LockedMemoryStorage

#: The endpoints each limit covers (POST only): sign-in steps, and report intake.
LOGIN_ENDPOINTS = ("auth.login_submit", "auth.second_factor_submit", "auth.invite_submit", "reauth.confirm_submit")
INTAKE_ENDPOINTS = ("api.create_report", "pages.report_submit")
#: The public reads that cost a query, limited together for anonymous clients (READ_RATE_LIMIT).
READ_ENDPOINTS = (
    "api.layers",
    "api.heat",
    "ogc.landing",
    "ogc.conformance",
    "ogc.openapi",
    "ogc.collections",
    "ogc.collection",
    "ogc.items",
    "ogc.item",
)
#: The read limit's scope: counted in each worker and settled with Redis in batches (:mod:`.batched_windows`).
READ_SCOPE = "read"

#: The one source that every client address that is no IP address counts as.
UNPARSEABLE = "unparseable"
#: IPv6 blocks whose last 32 bits are an IPv4 address: NAT64's well-known prefix (RFC 6052),
#: IPv4-translated (RFC 2765) and the deprecated IPv4-compatible addresses.
_LAST_32_BITS = tuple(ipaddress.IPv6Network(block) for block in ("64:ff9b::/96", "::ffff:0:0:0/96", "::/96"))
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")

log = logging.getLogger(__name__)


class AddressKeys:
    """Today's opaque key of an address, from a secret held in memory; yesterday's salt is forgotten."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._today = ("", b"")  # one attribute: a worker's threads never see a day with another's salt

    def _salt_of(self, day: str) -> bytes:
        known, salt = self._today
        if day != known:
            salt = hmac.new(self._secret, day.encode(), hashlib.sha256).digest()
            self._today = (day, salt)
        return salt

    def key(self, address: str, day: str) -> str:
        """Return the key of ``address`` on ``day`` (UTC, ``YYYY-MM-DD``)."""
        return hmac.new(self._salt_of(day), address.encode(), hashlib.sha256).hexdigest()[:32]


def _address_text(text: str) -> str:
    """Return ``text`` without the port or brackets some proxies add (``1.2.3.4:5678``, ``[2001:db8::1]:443``)."""
    text = text.strip()
    if text.startswith("["):
        inside, bracket, _port = text[1:].partition("]")
        return inside if bracket else text
    host, colon, port = text.partition(":")
    # One colon is an IPv4 address with a port; an IPv6 address has at least two.
    return host if colon and ":" not in port else text


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address whose traffic an IPv6 one carries, if it carries one.

    Replies to a 6to4 or Teredo address reach its sender only at the IPv4 address in it (for
    Teredo the client's, not the server's: a sender can write any server there and still get
    replies), so one IPv4 address holds every such IPv6 source: 2^80 6to4 ones, 2^64 Teredo ones.
    """
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _LAST_32_BITS):
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        return None if embedded in _THIS_NETWORK else embedded  # ::1 and :: are no IPv4 source
    return None


def source_of(address: str) -> str:
    """Return what a client address counts as: an IPv4 address, or the /64 network of an IPv6 one.

    An IPv6 subscriber (a phone, a home line) is given a whole /64 and may send from any of its
    2^64 addresses, so counting per address would give one attacker unlimited counts. An IPv6
    address that carries an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d`` from a dual-stack socket,
    NAT64, 6to4, Teredo; :func:`_embedded_ipv4`) is that IPv4 address. A port or brackets that a
    proxy added are dropped. Text that is no address (a Unix socket's empty one, a proxy's
    ``unknown``) counts as one shared source, :data:`UNPARSEABLE`, and is logged without its text.
    """
    try:
        parsed = ipaddress.ip_address(_address_text(address))
    except ValueError:
        log.warning("a client address is no IP address (check TRUSTED_PROXIES): it counts with all such")
        return UNPARSEABLE
    if isinstance(parsed, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(parsed)
        if embedded is not None:
            return str(embedded)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def client_key(scope: str = "") -> str:
    """Return today's opaque key for the requesting source (for limits and burst holds only).

    The source is the address, or the /64 of an IPv6 one (:func:`source_of`). With ``scope``,
    the key is of the source together with it (wrong passwords count per source and username),
    and tells neither.
    """
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    keys: AddressKeys = current_app.extensions["mapsvc.address_keys"]
    source = source_of(request.remote_addr or "")
    return keys.key(f"{source}\n{scope}" if scope else source, day)


def shared_key(scope: str) -> str:
    """Return today's opaque key of ``scope`` alone, counted over every source (one account's guesses)."""
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    keys: AddressKeys = current_app.extensions["mapsvc.address_keys"]
    # "*" is no source (an address, a /64 or the empty one), so this never meets a key of client_key.
    return keys.key(f"*\n{scope}", day)


def trust_proxies(app: Flask, hops: int) -> None:
    """Take the client address from ``X-Forwarded-For`` as set by ``hops`` proxies (``TRUSTED_PROXIES``), if any."""
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=0, x_host=0, x_port=0, x_prefix=0)  # type: ignore[method-assign]


class HideLimitKeys(logging.Filter):
    """Keep Flask-Limiter's breach messages but drop the key (the hashed address) they name."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite 'ratelimit X (key) exceeded at endpoint: E' without the key."""
        if record.getMessage().startswith("ratelimit ") and isinstance(record.args, tuple) and len(record.args) == 3:
            record.msg, record.args = "ratelimit %s exceeded at endpoint: %s", (record.args[0], record.args[2])
        return True


def too_many_requests(error: RateLimitExceeded) -> tuple[Response | str, int, dict[str, str]]:
    """Answer 429 in the client's format, saying in how many seconds the limit's window ends."""
    body, status, _headers = handle_http_error(error)
    now = time.time()
    _, end = windows.window_of(error.limit.limit, now)
    return body, status, {"Retry-After": str(max(1, math.ceil(end - now)))}


def _signed_in() -> bool:
    """Return whether the requester has an account (staff, peers and their API tokens read unlimited)."""
    return current_identity().role is not Role.ANONYMOUS


def init_app(app: Flask) -> None:
    """Set up the address keys and Flask-Limiter, and put the login and intake limits on their endpoints.

    Flask-Limiter's own headers stay off: they would replace the Retry-After of a 503. The
    strategy is not a setting: every other one keeps a time per request or per source. The read
    limit is counted in each worker and settled with Redis in batches; the others one hit at a time.
    """
    made: Settings = app.extensions["mapsvc.settings"]
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    app.register_error_handler(RateLimitExceeded, too_many_requests)
    trust_proxies(app, made.http.trusted_proxies)
    app.extensions["mapsvc.address_keys"] = AddressKeys(made.limits.key_secret)
    uri = made.limits.storage_uri
    limiter = Limiter(key_func=client_key, storage_uri=uri, strategy=batched_windows.STRATEGY)
    limiter.init_app(app)
    batched_windows.count_in_each_worker(limiter, READ_SCOPE)
    app.extensions["mapsvc.limiter"] = limiter
    limiter_log = logging.getLogger("flask-limiter")
    if not any(isinstance(f, HideLimitKeys) for f in limiter_log.filters):
        limiter_log.addFilter(HideLimitKeys())
    limits = made.limits
    login = limiter.shared_limit(lambda: limits.login_rate_limit, "login", methods=["POST"])
    intake = limiter.shared_limit(lambda: limits.intake_rate_limit, "intake", methods=["POST"])
    # Every method: a HEAD runs the same query as a GET.
    reads = limiter.shared_limit(lambda: limits.read_rate_limit, READ_SCOPE, exempt_when=_signed_in)
    for endpoints, limit in ((LOGIN_ENDPOINTS, login), (INTAKE_ENDPOINTS, intake), (READ_ENDPOINTS, reads)):
        for endpoint in endpoints:
            # The limit is checked by the wrapper, so the wrapper must be what the route calls.
            app.view_functions[endpoint] = limit(app.view_functions[endpoint])  # type: ignore[assignment]
