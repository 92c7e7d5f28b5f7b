"""Wrong passwords are slowed down per source and username, so an attacker waits and the owner does not.

A lock on the account (the earlier design) let anyone who knew a username keep its owner out
with five posts every quarter of an hour. Here wrong passwords are counted per pair of source
(the client's address) and username, in fixed clock windows (``LOGIN_FAILURE_LIMIT``, default
5 per quarter hour, 10 per hour, 20 per UTC day): past any of them, that pair's attempts are
answered "wrong" without the password being checked until the window ends. The owner, from any
other address, is not slowed at all. The README ("Passwords and sign-in") gives the numbers.

The pair's key is :func:`mapsvc.web.limits.client_key` of the address with the name: opaque,
changing every day, kept only in the rate limiter's store (process memory, or Redis), never in
the database or logs. Unknown names are counted exactly as existing ones, so the answers and
their timing still tell nothing of which names exist.
"""

from __future__ import annotations

from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string

from mapsvc.errors import InvalidInput
from mapsvc.store.accounts import normal_username
from mapsvc.web.limits import client_key
from mapsvc.web.windows import ClockWindowRateLimiter


class PasswordGuesses:
    """Counts of wrong passwords per (source, username) key in clock windows."""

    def __init__(self, limit: str, storage_uri: str, prefix: str = "") -> None:
        self.items: list[RateLimitItem] = parse_many(limit)
        self.limiter = ClockWindowRateLimiter(storage_from_string(storage_uri))
        self.scope = (prefix, "password") if prefix else ("password",)

    def throttled(self, key: str) -> bool:
        """Return whether some window of this key is full: its passwords are not checked."""
        return any(not self.limiter.test(item, *self.scope, key) for item in self.items)

    def count_wrong(self, key: str) -> None:
        """Count one wrong password of this key in every window."""
        for item in self.items:
            self.limiter.hit(item, *self.scope, key)

    def forget(self, key: str) -> None:
        """Forget the key's counts after a right password (the owner's own typing errors)."""
        for item in self.items:
            self.limiter.clear(item, *self.scope, key)


def init_app(app: Flask) -> None:
    """Make the app's counter of wrong passwords, unless ``LOGIN_FAILURE_LIMIT`` is empty."""
    limit = app.config.get("LOGIN_FAILURE_LIMIT")
    if limit:
        storage = app.config.get("RATELIMIT_STORAGE_URI", "memory://")
        prefix = app.config.get("RATELIMIT_KEY_PREFIX", "")
        app.extensions["mapsvc.password_guesses"] = PasswordGuesses(str(limit), storage, prefix)


def guess_key(username: str) -> str:
    """Return the key of this request's source with ``username`` as it is stored (any text works)."""
    try:
        name = normal_username(username)
    except InvalidInput:
        name = ""
    return client_key(scope=f"password:{name}")


def _guesses() -> PasswordGuesses | None:
    guesses: PasswordGuesses | None = current_app.extensions.get("mapsvc.password_guesses")
    return guesses


def too_many_guesses(username: str) -> bool:
    """Return whether wrong passwords for ``username`` from this source are to wait."""
    guesses = _guesses()
    return guesses is not None and guesses.throttled(guess_key(username))


def count_guess(username: str, right: bool) -> None:
    """Count a wrong password for ``username`` from this source, or forget the count after a right one."""
    guesses = _guesses()
    if guesses is None:
        return
    if right:
        guesses.forget(guess_key(username))
    else:
        guesses.count_wrong(guess_key(username))
