"""Wrong passwords are slowed down per source and username, so an attacker waits and the owner does not.

A lock on the account (the earlier design) let anyone who knew a username keep its owner out
with five posts every quarter of an hour. Here wrong passwords are counted per pair of source
(the client's address, or its IPv6 /64) and username, in fixed clock windows
(``LOGIN_FAILURE_LIMIT``, default 5 per quarter hour, 10 per hour, 20 per UTC day): past any of
them, that pair's attempts are answered "wrong" without the password being checked until the
window ends. The owner, from any other address, is not slowed at all. The README ("Passwords and
sign-in") gives the numbers.

An attempt is counted before its password is checked, in one atomic step per window (the
store's increment), and given back if the password was right: parallel posts cannot all pass a
test made before any of them is counted. An attempt refused by a full window counts in none.

The pair's key is :func:`mapsvc.web.limits.client_key` of the address with the name: opaque,
changing every day, kept only in the rate limiter's store (process memory, or Redis), never in
the database or logs. Unknown names are counted exactly as existing ones, so the answers and
their timing still tell nothing of which names exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string

from mapsvc.errors import InvalidInput
from mapsvc.store.accounts import normal_username
from mapsvc.web.limits import client_key
from mapsvc.web.windows import ClockWindowRateLimiter


class Budget:
    """Wrong passwords allowed per key in clock windows (one setting such as ``LOGIN_FAILURE_LIMIT``)."""

    def __init__(self, name: str, limit: str, limiter: ClockWindowRateLimiter, prefix: str = "") -> None:
        self.items: list[RateLimitItem] = parse_many(limit)
        self.limiter = limiter
        self.scope = (prefix, name) if prefix else (name,)

    def take(self, key: str) -> bool:
        """Count an attempt of ``key`` in every window; if one is full, count it in none and return False."""
        counted: list[RateLimitItem] = []
        for item in self.items:
            counted.append(item)
            if not self.limiter.hit(item, *self.scope, key):
                self._give_back(key, counted)
                return False
        return True

    def _give_back(self, key: str, items: list[RateLimitItem]) -> None:
        for item in items:
            self.limiter.give_back(item, *self.scope, key)

    def give_back(self, key: str) -> None:
        """Uncount one attempt of ``key`` in every window (it was not a wrong password)."""
        self._give_back(key, self.items)

    def forget(self, key: str) -> None:
        """Forget every count of ``key`` (the owner's own typing errors, after a right password)."""
        for item in self.items:
            self.limiter.clear(item, *self.scope, key)


@dataclass
class Attempt:
    """A password attempt, counted in its budgets before the password is checked."""

    allowed: bool
    #: The budgets and keys it is counted under.
    counted: list[tuple[Budget, str]] = field(default_factory=list)


class PasswordGuesses:
    """The counts of wrong passwords, in the rate limiter's store: per source and username."""

    def __init__(self, limit: str, storage_uri: str, prefix: str = "") -> None:
        self.limiter = ClockWindowRateLimiter(storage_from_string(storage_uri))
        self.per_source = Budget("password", limit, self.limiter, prefix)

    def attempt(self, keys: list[tuple[Budget, str]]) -> Attempt:
        """Count an attempt under each (budget, key); past any, count it nowhere and refuse it."""
        taken: list[tuple[Budget, str]] = []
        for budget, key in keys:
            if not budget.take(key):
                for earlier, earlier_key in taken:
                    earlier.give_back(earlier_key)
                return Attempt(False)
            taken.append((budget, key))
        return Attempt(True, taken)


def init_app(app: Flask) -> None:
    """Make the app's counter of wrong passwords, unless ``LOGIN_FAILURE_LIMIT`` is empty."""
    limit = app.config.get("LOGIN_FAILURE_LIMIT")
    if limit:
        storage = app.config.get("RATELIMIT_STORAGE_URI", "memory://")
        prefix = app.config.get("RATELIMIT_KEY_PREFIX", "")
        app.extensions["mapsvc.password_guesses"] = PasswordGuesses(str(limit), storage, prefix)


def stored_name(username: str) -> str:
    """Return ``username`` as it is stored, or "" for text that is no username (counted all the same)."""
    try:
        return normal_username(username)
    except InvalidInput:
        return ""


def _guesses() -> PasswordGuesses | None:
    guesses: PasswordGuesses | None = current_app.extensions.get("mapsvc.password_guesses")
    return guesses


def begin_attempt(username: str) -> Attempt:
    """Count a password attempt for ``username`` from this source; ``allowed`` says whether to check it."""
    guesses = _guesses()
    if guesses is None:
        return Attempt(True)
    return guesses.attempt([(guesses.per_source, client_key(scope=f"password:{stored_name(username)}"))])


def end_attempt(attempt: Attempt, right: bool) -> None:
    """After a right password, give the attempt back and forget the source's count of the owner's typos."""
    if not right:
        return
    for budget, key in attempt.counted:
        budget.forget(key)
