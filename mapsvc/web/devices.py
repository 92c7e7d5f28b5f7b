"""Device cookies: a browser an account signed in from before is not slowed by others' wrong passwords.

OWASP's "Slow Down Online Guessing Attacks with Device Cookies": after a right password the
browser gets an entry for that account, and wrong passwords from browsers without one share a
small budget per account (:mod:`mapsvc.web.guessing`). Whoever guesses from many addresses then
gets few guesses, and cannot keep the owner out of a browser she used before.

An entry is a random nonce with ``HMAC(key, username, nonce)``: the server checks it by
recomputing it for the username being tried, so it needs no table, and a seized phone's cookie
names no account and cannot be linked to one without the key. The key is
``DEVICE_COOKIE_SECRET`` (hosts that share one Redis, or entries that are to outlive a restart),
else made at random when the app is created, so that a restart forgets every entry. The cookie
holds at most :data:`MAX_ENTRIES` entries (several people signing in on one office phone), is
HttpOnly, SameSite=Strict, Secure as the session cookie is, and sent only to ``/login``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from flask import Flask, current_app, request
from werkzeug.wrappers import Response

from mapsvc.web.limits import key_secret

SECURE_COOKIE = "__Secure-mapsvc-device"
PLAIN_COOKIE = "mapsvc_device"
#: The path the cookie is sent to: the sign-in form and its two-factor step, nothing else.
COOKIE_PATH = "/login"
#: Entries kept per browser, the newest first.
MAX_ENTRIES = 5
_PART_BYTES = 16
_ENTRY = re.compile(r"[A-Za-z0-9_-]{44}")


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class DeviceKeys:
    """Makes and recognises the entries of device cookies with a key held in memory."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"mapsvc device cookie", hashlib.sha256).digest()

    def _mac(self, username: str, nonce: str) -> str:
        message = f"{username}\n{nonce}".encode()
        return _text(hmac.new(self._key, message, hashlib.sha256).digest()[:_PART_BYTES])

    def entry(self, username: str) -> str:
        """Return a new entry for ``username`` (as stored): a random nonce and its MAC."""
        nonce = _text(secrets.token_bytes(_PART_BYTES))
        return nonce + self._mac(username, nonce)

    def holds(self, entry: str, username: str) -> bool:
        """Return whether ``entry`` was made for ``username``."""
        nonce, mac = entry[: len(entry) // 2], entry[len(entry) // 2 :]
        return hmac.compare_digest(mac, self._mac(username, nonce))


def cookie_name() -> str:
    """Return the cookie's name: ``__Secure-`` prefixed when it is Secure."""
    return SECURE_COOKIE if current_app.config["SESSION_COOKIE_SECURE"] else PLAIN_COOKIE


def _keys() -> DeviceKeys:
    keys: DeviceKeys = current_app.extensions["mapsvc.device_keys"]
    return keys


def _entries() -> list[str]:
    """Return the well-formed entries of this request's device cookie."""
    value = request.cookies.get(cookie_name(), "")
    return [entry for entry in value.split(".") if _ENTRY.fullmatch(entry)][:MAX_ENTRIES]


def known_device(username: str) -> str | None:
    """Return this browser's entry for ``username`` (as stored) if it signed in to it before, else None.

    Every entry is checked, so the time taken tells nothing of which one, if any, matched.
    """
    keys = _keys()
    found = [entry for entry in _entries() if keys.holds(entry, username)]
    return found[0] if found else None


def remember_device(response: Response, username: str) -> Response:
    """Give the browser a new entry for ``username`` (replacing its old one) after a right password."""
    keys = _keys()
    others = [entry for entry in _entries() if not keys.holds(entry, username)]
    days = float(current_app.config["DEVICE_COOKIE_DAYS"])
    response.set_cookie(
        cookie_name(),
        ".".join([keys.entry(username), *others][:MAX_ENTRIES]),
        max_age=int(timedelta(days=days).total_seconds()),
        path=COOKIE_PATH,
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        httponly=True,
        samesite="Strict",
    )
    return response


def init_app(app: Flask) -> None:
    """Make the key of the device cookies: ``DEVICE_COOKIE_SECRET``, or random for this process's life."""
    app.extensions["mapsvc.device_keys"] = DeviceKeys(key_secret(app.config, "DEVICE_COOKIE_SECRET"))
