"""Wrong passwords are slowed down, so that an attacker waits and the owner does not.

A lock on the account (an earlier design) let anyone who knew a username keep its owner out
with five posts every quarter of an hour. Here wrong passwords are counted in budgets, each in
fixed clock windows; past any window of a budget that applies, an attempt is answered "wrong"
without the password being checked until the window ends:

- per source (the address, or its IPv6 /64) and username, ``LOGIN_FAILURE_LIMIT``, for every
  sign-in attempt;
- per username, over every source, ``LOGIN_ACCOUNT_FAILURE_LIMIT``, for browsers without a
  valid device cookie for that name (:mod:`mapsvc.web.auth.devices`): guesses spread over many
  addresses share it, while the owner, in a browser she signed in from before, is not held by it;
- per device-cookie entry, ``LOGIN_FAILURE_LIMIT`` again, and per username over all its
  entries together, ``LOGIN_KNOWN_DEVICE_FAILURE_LIMIT`` (unset: three times the name's own
  budget): a stolen cookie (a seized phone), or a stock of entries made with a phished password,
  is trusted for that many wrong passwords over every address, then counts as no cookie. Where
  either is off (""), a cookie counts as none: its holder is never unlimited;
- per account, ``CONFIRM_FAILURE_LIMIT``, for ``/account/confirm``, where the session names
  the account: whoever holds a signed-in phone gets few guesses; the owner can sign in again.

An attempt is counted before its password is checked, in one atomic step per window (the
store's increment), and a refused one is taken back: parallel posts cannot all pass a test
made before any of them is counted. After a right password the source's and the device's counts
are forgotten (the owner's typing errors) and the attempt is given back to the account's budget.

Keys are :func:`mapsvc.web.hooks.limits.client_key` and :func:`~mapsvc.web.hooks.limits.shared_key`:
opaque, changing every day, kept only in the rate limiter's store (process memory, or Redis),
never in the database or logs. Unknown names are counted exactly as existing ones, so the
answers and their timing tell nothing of which names exist, nor whether a budget is spent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string

from mapsvc.core.errors import InvalidInput
from mapsvc.settings import LimitSettings
from mapsvc.store.accounts import normal_username
from mapsvc.store.models import Account
from mapsvc.web.auth import devices
from mapsvc.web.hooks.limits import client_key, shared_key
from mapsvc.web.hooks.windows import ClockWindowRateLimiter

#: ``LOGIN_KNOWN_DEVICE_FAILURE_LIMIT``, unset, is ``LOGIN_ACCOUNT_FAILURE_LIMIT`` this many times.
KNOWN_DEVICES_TIMES = 3


class Budget:
    """Wrong passwords allowed per key in clock windows (one setting such as ``LOGIN_FAILURE_LIMIT``)."""

    def __init__(
        self, name: str, items: list[RateLimitItem], limiter: ClockWindowRateLimiter, prefix: str = ""
    ) -> None:
        self.items = items
        self.limiter = limiter
        self.scope = (prefix, name) if prefix else (name,)

    def take(self, key: str) -> tuple[str, ...] | None:
        """Count an attempt of ``key`` in every window; return their keys, or None (counted in none) if one is full."""
        windows: list[str] = []
        for item in self.items:
            within, window = self.limiter.hit_window(item, *self.scope, key)
            windows.append(window)
            if not within:
                self.give_back(windows)
                return None
        return tuple(windows)

    def give_back(self, windows: Iterable[str]) -> None:
        """Uncount one attempt in each of ``windows``, the ones :meth:`take` counted it in."""
        for window in windows:
            self.limiter.give_back(window)

    def forget(self, key: str) -> None:
        """Forget every count of ``key`` (the owner's own typing errors, after a right password)."""
        for item in self.items:
            self.limiter.clear(item, *self.scope, key)


@dataclass(frozen=True)
class Count:
    """Where an attempt was counted: a budget, a key and its windows, and whether a right password forgets the key."""

    budget: Budget
    key: str
    windows: tuple[str, ...]
    forget_when_right: bool = False


@dataclass
class Attempt:
    """A password attempt, counted in its budgets before the password is checked."""

    allowed: bool
    counted: list[Count] = field(default_factory=list)


def _items(limit: str | None) -> list[RateLimitItem] | None:
    """Return the windows of a limit, or None where it is "" (off)."""
    return parse_many(limit) if limit else None


def _known_devices_items(limits: LimitSettings) -> list[RateLimitItem] | None:
    """Return ``LOGIN_KNOWN_DEVICE_FAILURE_LIMIT``'s windows; unset, ``LOGIN_ACCOUNT_FAILURE_LIMIT``'s times three."""
    if limits.login_known_device_failure_limit is not None:
        return _items(limits.login_known_device_failure_limit)
    per_account = _items(limits.login_account_failure_limit) or []
    tripled = [type(item)(item.amount * KNOWN_DEVICES_TIMES, item.multiples, item.namespace) for item in per_account]
    return tripled or None


class PasswordGuesses:
    """The budgets of wrong passwords, in the rate limiter's store (None where a setting is "")."""

    def __init__(self, limits: LimitSettings) -> None:
        self.limiter = ClockWindowRateLimiter(storage_from_string(limits.storage_uri))
        prefix = limits.key_prefix

        def budget(name: str, items: list[RateLimitItem] | None) -> Budget | None:
            return Budget(name, items, self.limiter, prefix) if items else None

        self.per_source = budget("password", _items(limits.login_failure_limit))
        self.per_device = budget("password-device", _items(limits.login_failure_limit))
        self.per_known_devices = budget("password-known-devices", _known_devices_items(limits))
        self.per_account = budget("password-account", _items(limits.login_account_failure_limit))
        self.per_confirm = budget("password-confirm", _items(limits.confirm_failure_limit))

    def take(self, attempt: Attempt, budget: Budget | None, key: str, forget_when_right: bool = False) -> bool:
        """Count ``attempt`` under ``key`` in ``budget`` too; return whether it had room (one that is off has)."""
        if budget is None:
            return True
        windows = budget.take(key)
        if windows is None:
            return False
        attempt.counted.append(Count(budget, key, windows, forget_when_right))
        return True

    def take_all(self, attempt: Attempt, counts: list[tuple[Budget | None, str, bool]]) -> bool:
        """Count ``attempt`` in all ``counts`` (budget, key, forget), or in none: False if one is off or full."""
        if any(budget is None for budget, _key, _forget in counts):
            return False
        before = len(attempt.counted)
        for budget, key, forget_when_right in counts:
            if not self.take(attempt, budget, key, forget_when_right):
                self.give_back(attempt.counted[before:])
                del attempt.counted[before:]
                return False
        return True

    @staticmethod
    def give_back(counts: list[Count]) -> None:
        """Uncount an attempt from each of ``counts``, in the windows it was counted in."""
        for count in counts:
            count.budget.give_back(count.windows)

    def refuse(self, attempt: Attempt) -> Attempt:
        """Take back everything ``attempt`` was counted in, and refuse it."""
        self.give_back(attempt.counted)
        return Attempt(False)


def init_app(app: Flask) -> None:
    """Make the app's budgets of wrong passwords and the key of its device cookies."""
    app.extensions["mapsvc.password_guesses"] = PasswordGuesses(app.extensions["mapsvc.settings"].limits)
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


def begin_sign_in(username: str, account: Account | None) -> Attempt:
    """Count a sign-in attempt for ``username`` from this source and browser; ``allowed`` says whether to check it.

    ``account`` is the account of that name (None if there is none): a device cookie's entry is
    checked against it, so that a new password voids every entry made before.
    """
    guesses, name, attempt = _guesses(), stored_name(username), Attempt(True)
    if not guesses.take(attempt, guesses.per_source, client_key(f"password:{name}"), forget_when_right=True):
        return guesses.refuse(attempt)
    device = devices.known_device(name, account)
    own = (guesses.per_device, shared_key(f"device:{device}"), True)
    every = (guesses.per_known_devices, shared_key(f"known-devices:{name}"), False)
    if device is not None and guesses.take_all(attempt, [own, every]):
        return attempt
    # No cookie for this name, or its entry, or the name's cookies together, have used up their
    # budgets (or those are off): the name's shared budget.
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
            count.budget.give_back(count.windows)
