"""Wrong passwords are slowed down, so that an attacker waits and the owner does not.

A lock on the account (an earlier design) let anyone who knew a username keep its owner out
with five posts every quarter of an hour. Here wrong passwords are counted in budgets, each in
fixed clock windows; past any window of a budget that applies, an attempt is answered "wrong"
without the password being checked until the window ends:

- per source (the address, or its IPv6 /64) and username, ``LOGIN_FAILURE_LIMIT``, for every
  sign-in attempt;
- per username, over every source, ``LOGIN_ACCOUNT_FAILURE_LIMIT``, for browsers without a
  device cookie for that name (:mod:`mapsvc.web.devices`): guesses spread over many addresses
  share it, while the owner, in a browser she signed in from before, is never held by it;
- per device-cookie entry, ``LOGIN_FAILURE_LIMIT`` again: a stolen cookie (a seized phone) is
  trusted for that many wrong passwords over every address, then counts as no cookie;
- per account, ``CONFIRM_FAILURE_LIMIT``, for ``/account/confirm``, where the session names
  the account: whoever holds a signed-in phone gets few guesses; the owner can sign in again.

An attempt is counted before its password is checked, in one atomic step per window (the
store's increment), and a refused one is taken back: parallel posts cannot all pass a test
made before any of them is counted. After a right password the source's and the device's counts
are forgotten (the owner's typing errors) and the attempt is given back to the account's budget.

Keys are :func:`mapsvc.web.limits.client_key` and :func:`~mapsvc.web.limits.shared_key`:
opaque, changing every day, kept only in the rate limiter's store (process memory, or Redis),
never in the database or logs. Unknown names are counted exactly as existing ones, so the
answers and their timing tell nothing of which names exist, nor whether a budget is spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string

from mapsvc.errors import InvalidInput
from mapsvc.store.accounts import normal_username
from mapsvc.web import devices
from mapsvc.web.limits import client_key, shared_key
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


@dataclass(frozen=True)
class Count:
    """Where an attempt is counted: a budget, a key, and whether a right password forgets the key's count."""

    budget: Budget
    key: str
    forget_when_right: bool = False


@dataclass
class Attempt:
    """A password attempt, counted in its budgets before the password is checked."""

    allowed: bool
    counted: list[Count] = field(default_factory=list)


def _budget(config: dict, setting: str, name: str, limiter: ClockWindowRateLimiter) -> Budget | None:  # type: ignore[type-arg]
    limit = config.get(setting)
    return Budget(name, str(limit), limiter, config.get("RATELIMIT_KEY_PREFIX") or "") if limit else None


class PasswordGuesses:
    """The budgets of wrong passwords, in the rate limiter's store (None where a setting is "")."""

    def __init__(self, config: dict) -> None:  # type: ignore[type-arg]
        self.limiter = ClockWindowRateLimiter(storage_from_string(config.get("RATELIMIT_STORAGE_URI", "memory://")))
        self.per_source = _budget(config, "LOGIN_FAILURE_LIMIT", "password", self.limiter)
        self.per_device = _budget(config, "LOGIN_FAILURE_LIMIT", "password-device", self.limiter)
        self.per_account = _budget(config, "LOGIN_ACCOUNT_FAILURE_LIMIT", "password-account", self.limiter)
        self.per_confirm = _budget(config, "CONFIRM_FAILURE_LIMIT", "password-confirm", self.limiter)

    def take(self, attempt: Attempt, budget: Budget | None, key: str, forget_when_right: bool = False) -> bool:
        """Count ``attempt`` under ``key`` in ``budget`` too; return whether it had room (one that is off has)."""
        if budget is None:
            return True
        if budget.take(key):
            attempt.counted.append(Count(budget, key, forget_when_right))
            return True
        return False

    def refuse(self, attempt: Attempt) -> Attempt:
        """Take back everything ``attempt`` was counted in, and refuse it."""
        for count in attempt.counted:
            count.budget.give_back(count.key)
        return Attempt(False)


def init_app(app: Flask) -> None:
    """Make the app's budgets of wrong passwords and the key of its device cookies."""
    app.extensions["mapsvc.password_guesses"] = PasswordGuesses(app.config)
    devices.init_app(app)


def stored_name(username: str) -> str:
    """Return ``username`` as it is stored, or "" for text that is no username (counted all the same)."""
    try:
        return normal_username(username)
    except InvalidInput:
        return ""


def _guesses() -> PasswordGuesses:
    guesses: PasswordGuesses = current_app.extensions["mapsvc.password_guesses"]
    return guesses


def begin_sign_in(username: str) -> Attempt:
    """Count a sign-in attempt for ``username`` from this source and browser; ``allowed`` says whether to check it."""
    guesses, name, attempt = _guesses(), stored_name(username), Attempt(True)
    if not guesses.take(attempt, guesses.per_source, client_key(f"password:{name}"), forget_when_right=True):
        return guesses.refuse(attempt)
    device = devices.known_device(name)
    if device is not None and guesses.take(attempt, guesses.per_device, shared_key(f"device:{device}"), True):
        return attempt
    # No cookie for this name, or its entry has used up its own budget: the name's shared one.
    if not guesses.take(attempt, guesses.per_account, shared_key(f"account:{name}")):
        return guesses.refuse(attempt)
    return attempt


def begin_confirmation(account_id: int) -> Attempt:
    """Count a password confirmation of a signed-in account; ``allowed`` says whether to check it."""
    guesses, attempt = _guesses(), Attempt(True)
    if not guesses.take(attempt, guesses.per_confirm, shared_key(f"confirm:{account_id}")):
        return guesses.refuse(attempt)
    return attempt


def end_attempt(attempt: Attempt, right: bool) -> None:
    """After a right password, forget the source's and device's counts and give the attempt back to the rest."""
    if not right:
        return
    for count in attempt.counted:
        if count.forget_when_right:
            count.budget.forget(count.key)
        else:
            count.budget.give_back(count.key)
