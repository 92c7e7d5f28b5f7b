"""Device cookies: a browser an account signed in from before is not slowed by others' wrong passwords.

OWASP's "Slow Down Online Guessing Attacks with Device Cookies": after a right password the
browser gets an entry for that account, and wrong passwords from browsers without one share a
small budget per account (:mod:`mapsvc.web.auth.guessing`). Whoever guesses from many addresses then
gets few guesses, and cannot keep the owner out of a browser she used before.

An entry is a random nonce, the UTC day it was made, and ``HMAC(key, binding, day, nonce,
username)``, where the binding is a hash of the account's password hash and of how often its
browsers were forgotten ("sign out everywhere"). The server checks an entry by recomputing it for
the account being tried, so it needs no table; an entry older than ``DEVICE_COOKIE_DAYS`` is
refused whatever the browser kept, and a new password or "sign out everywhere" voids every entry
of the account (a seized phone's, or a stock of them made with a phished password). A name with
no account is checked against a decoy binding in the same way. A seized phone's cookie names no
account and cannot be linked to one without the key. The key is ``DEVICE_COOKIE_SECRET`` (only
for hosts that share one Redis), else made at random when the app is created, so that a restart
forgets every entry. The cookie holds at most :data:`MAX_ENTRIES` entries (several people
signing in on one office phone), has a name that says nothing of the service, is HttpOnly,
SameSite=Strict, Secure as the session cookie is, and is sent only to ``/login``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import UTC, date, datetime, timedelta

from flask import Flask, current_app, request
from werkzeug.wrappers import Response

from mapsvc.settings import settings
from mapsvc.store.models import Account

#: The cookie's names, Secure or not: nothing in them says what service, device or account it is for.
SECURE_COOKIE = "__Secure-pref"
PLAIN_COOKIE = "pref"
#: The path the cookie is sent to: the sign-in form and its two-factor step, nothing else.
COOKIE_PATH = "/login"
#: Entries kept per browser, the newest first.
MAX_ENTRIES = 5
_PART_BYTES = 16
_NONCE_CHARS = 22
_DAY_DIGITS = 6
#: A nonce, the day it was made (days since 1970-01-01, UTC), and the MAC.
_ENTRY = re.compile(r"[A-Za-z0-9_-]{22}[0-9]{6}[A-Za-z0-9_-]{22}")
_EPOCH = date(1970, 1, 1)


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def day_number(moment: datetime) -> int:
    """Return the UTC day of ``moment`` as days since 1970-01-01 (an entry's issue day: no finer time)."""
    return (moment.astimezone(UTC).date() - _EPOCH).days


class DeviceKeys:
    """Makes and recognises the entries of device cookies with a key held in memory."""

    def __init__(self, secret: bytes, days: int) -> None:
        self._key = hmac.new(secret, b"mapsvc device cookie", hashlib.sha256).digest()
        # What a name with no account is bound to (as long as an argon2 hash): nothing was made with it.
        self._decoy = f"{secrets.token_urlsafe(72)}\n0"
        self.days = days

    def binding(self, account: Account | None) -> bytes:
        """Return what ties entries to ``account`` as it is now: its password and its "sign out everywhere" count."""
        text = self._decoy if account is None else f"{account.password_hash}\n{account.browsers_forgotten}"
        return hashlib.sha256(text.encode()).digest()

    def _mac(self, binding: bytes, stamp: str, nonce: str, username: str) -> str:
        # Every part but the last has a fixed length, so no two tuples give one message.
        message = binding + f"{stamp}{nonce}{username}".encode()
        return _text(hmac.new(self._key, message, hashlib.sha256).digest()[:_PART_BYTES])

    def entry(self, username: str, binding: bytes, day: int) -> str:
        """Return a new entry (as stored) for ``username`` bound to ``binding``, made on ``day``."""
        nonce, stamp = _text(secrets.token_bytes(_PART_BYTES)), f"{day:0{_DAY_DIGITS}d}"
        return nonce + stamp + self._mac(binding, stamp, nonce, username)

    def holds(self, entry: str, username: str, binding: bytes, today: int) -> bool:
        """Return whether ``entry`` was made for ``username`` with ``binding`` at most ``days`` days before ``today``.

        A day ahead is accepted too: hosts sharing one key may differ by seconds at midnight.
        """
        nonce, stamp = entry[:_NONCE_CHARS], entry[_NONCE_CHARS : _NONCE_CHARS + _DAY_DIGITS]
        mac = entry[_NONCE_CHARS + _DAY_DIGITS :]
        right = hmac.compare_digest(mac, self._mac(binding, stamp, nonce, username))
        return right and -1 <= today - int(stamp) <= self.days


def cookie_name() -> str:
    """Return the cookie's name: ``__Secure-`` prefixed when it is Secure."""
    return SECURE_COOKIE if settings().accounts.secure_cookies else PLAIN_COOKIE


def _keys() -> DeviceKeys:
    keys: DeviceKeys = current_app.extensions["mapsvc.device_keys"]
    return keys


def _entries() -> list[str]:
    """Return the well-formed entries of this request's device cookie."""
    value = request.cookies.get(cookie_name(), "")
    return [entry for entry in value.split(".") if _ENTRY.fullmatch(entry)][:MAX_ENTRIES]


def known_device(username: str, account: Account | None) -> str | None:
    """Return this browser's valid entry for ``username`` (as stored) if it has one, else None.

    ``account`` is the account of that name, or None if there is none: the entries are then
    checked against a decoy, in the same time. Every entry is checked, so the time taken tells
    nothing of which one, if any, matched.
    """
    keys, today = _keys(), day_number(settings().now())
    binding = keys.binding(account)
    found = [entry for entry in _entries() if keys.holds(entry, username, binding, today)]
    return found[0] if found else None


def _set(response: Response, value: str, max_age: int) -> Response:
    secure = settings().accounts.secure_cookies
    response.set_cookie(
        cookie_name(), value, max_age=max_age, path=COOKIE_PATH, secure=secure, httponly=True, samesite="Strict"
    )
    return response


def remember_device(response: Response, account: Account) -> Response:
    """Give the browser a new entry for ``account`` (replacing its old ones) after a right password.

    The cookie ends at the midnight (UTC) after which the server refuses the entry, so the
    browser keeps no finer time of the sign-in than the entry itself does.
    """
    keys, now = _keys(), settings().now()
    binding, today = keys.binding(account), day_number(now)
    others = [entry for entry in _entries() if not keys.holds(entry, account.username, binding, today)]
    value = ".".join([keys.entry(account.username, binding, today), *others][:MAX_ENTRIES])
    end = datetime.combine(_EPOCH + timedelta(days=today + keys.days + 1), datetime.min.time(), UTC)
    return _set(response, value, int((end - now).total_seconds()))


def forget_device(response: Response) -> Response:
    """Delete this browser's device cookie (every account's entry in it)."""
    secure = settings().accounts.secure_cookies
    response.delete_cookie(cookie_name(), path=COOKIE_PATH, secure=secure, httponly=True, samesite="Strict")
    return response


def init_app(app: Flask) -> None:
    """Make the entries' key: ``DEVICE_COOKIE_SECRET``, or random for this process's life (made at start-up)."""
    accounts = app.extensions["mapsvc.settings"].accounts
    app.extensions["mapsvc.device_keys"] = DeviceKeys(accounts.device_cookie_secret, accounts.device_cookie_days)
