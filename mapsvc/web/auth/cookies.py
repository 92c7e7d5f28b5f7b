"""Who is asking, from the session cookie or an API token; the cookie itself; CSRF tokens.

Anonymous visitors get no cookie (the language cookie aside). A signed-in browser holds one
cookie: a random token whose SHA-256 names its server-side session. Every unsafe request that
carries that cookie must also carry the session's CSRF token; requests without the cookie
(anonymous reporters) and Bearer-token requests carry no ambient authority and need none.

The CSRF token is an HMAC of the session's own secret token, so it is bound to that session,
changes when the session does, and needs no storage; it is compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, g, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from mapsvc.core.errors import Forbidden, SignInRequired
from mapsvc.core.roles import Role
from mapsvc.services.accounts import account_policy
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.accounts import needs_second_factor
from mapsvc.store.logins import find_session, find_token
from mapsvc.store.totp import SecretBox
from mapsvc.web.auth.identity import ANONYMOUS, Identity, current_identity

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECURE_COOKIE = "__Host-mapsvc"
PLAIN_COOKIE = "mapsvc_session"


def session_lifetime(pending: bool = False) -> timedelta:
    """Return how long a full (or a password-only, waiting) login session lasts."""
    accounts = settings().accounts
    return accounts.pending_lifetime if pending else accounts.session_lifetime


def cookie_name() -> str:
    """Return the session cookie's name: ``__Host-`` prefixed when it is Secure."""
    return SECURE_COOKIE if settings().accounts.secure_cookies else PLAIN_COOKIE


def set_login_cookie(response: Response, token: str, lifetime: timedelta) -> Response:
    """Give the browser its session token: Secure, HttpOnly, SameSite=Lax, for the whole site."""
    response.set_cookie(
        cookie_name(),
        token,
        max_age=int(lifetime.total_seconds()),
        path="/",
        secure=settings().accounts.secure_cookies,
        httponly=True,
        samesite="Lax",
    )
    return response


def clear_login_cookie(response: Response) -> Response:
    """Remove the session cookie from the browser."""
    response.delete_cookie(
        cookie_name(), path="/", secure=settings().accounts.secure_cookies, httponly=True, samesite="Lax"
    )
    return response


def _bearer_identity(header: str) -> Identity:
    """Return the identity of an ``Authorization: Bearer`` header, or raise 401 naming the problem."""
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SignInRequired(_("the Authorization header must be 'Bearer' and an API token"), "Authorization")
    if not request.path.startswith("/api/"):
        raise SignInRequired(_("API tokens are accepted on /api/ paths only"), "Authorization")
    with get_store().reader() as session:
        found = find_token(session, token.strip())
    if found is None:
        raise SignInRequired(_("the API token is unknown or revoked"), "Authorization")
    api_token, owner = found
    return Identity(role=Role(api_token.role), username=owner.username, account_id=owner.id, by_token=True)


def load_identity() -> None:
    """Set ``g.identity`` (and, for a cookie, ``g.login_token`` and ``g.pending_account_id``)."""
    g.identity = ANONYMOUS
    header = request.headers.get("Authorization")
    if header:
        g.identity = _bearer_identity(header)
        return
    token = request.cookies.get(cookie_name())
    if not token:
        return
    with get_store().reader() as session:
        found = find_session(session, token, settings().now())
    if found is None:
        g.stale_cookie = True
        return
    login, account = found
    g.login_token = token
    g.fresh_until = login.fresh_until
    if needs_second_factor(account, account_policy()) and not login.second_factor_done:
        g.pending_account_id = account.id
        return
    g.identity = Identity(role=Role(account.role), username=account.username, account_id=account.id)


def forget_stale_cookie(response: Response) -> Response:
    """Delete a cookie whose session has ended (expired, signed out elsewhere, account disabled)."""
    if g.get("stale_cookie") and not g.get("cookie_set"):
        clear_login_cookie(response)
    return response


def csrf_token() -> str:
    """Return this session's CSRF token, or an empty string for a request without a session."""
    token = g.get("login_token")
    if not token:
        return ""
    return hmac.new(token.encode(), b"mapsvc csrf", hashlib.sha256).hexdigest()


def check_csrf() -> None:
    """Refuse an unsafe request that authenticates by cookie without the session's CSRF token."""
    if request.method in SAFE_METHODS or not g.get("login_token"):
        return
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    if not hmac.compare_digest(sent.encode(), csrf_token().encode()):
        raise Forbidden(
            _("the CSRF token (form field csrf_token or header X-CSRF-Token) is missing or wrong; reload the page"),
            "csrf_token",
        )


def require_same_origin() -> None:
    """Refuse a cross-site form post where no session exists yet to bind a CSRF token to (sign-in).

    Browsers name the origin of a form post; a post from another site could otherwise sign a
    victim in to the attacker's account.
    """
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise Forbidden(_("this form must be sent from this site"), "Origin")
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise Forbidden(_("this form must be sent from this site"), "Origin")


def init_app(app: Flask) -> None:
    """Make the TOTP secrets' box (keys checked at start-up); register the identity and CSRF hooks and helpers."""
    keys = app.extensions["mapsvc.settings"].accounts.totp_keys
    app.extensions["mapsvc.totp_box"] = SecretBox(keys) if keys else None
    app.before_request(load_identity)
    app.after_request(forget_stale_cookie)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["identity"] = current_identity
