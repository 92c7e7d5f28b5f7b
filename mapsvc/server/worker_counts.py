"""Counts that each worker keeps apart when the rate limiter's storage is one process's memory.

Rate limits, burst holds, tile budgets and the budgets of wrong passwords all count in the
storage of ``RATELIMIT_STORAGE_URI``. With ``memory://`` every gunicorn worker has a storage of
its own, so N workers let through N times each number, silently (measured: 90 reports a minute
passed three workers whose limit was 30). ``mapsvc serve --workers N`` therefore refuses to
start while any such count is in effect in memory (:func:`counted_per_worker`).
"""

from __future__ import annotations

from mapsvc.settings import LimitSettings

#: Counted by Flask-Limiter's storage while ``RATELIMIT_ENABLED`` (tiles: per client and for everyone).
#: Each is the attribute of :class:`~mapsvc.settings.LimitSettings` of its name in lower case.
LIMITER_SETTINGS = (
    "INTAKE_RATE_LIMIT",
    "BURST_HOLD",
    "LOGIN_RATE_LIMIT",
    "READ_RATE_LIMIT",
    "TILE_OVERVIEW_RATE_LIMIT",
    "TILE_MISS_RATE_LIMIT",
    "TILE_DEEP_MISS_RATE_LIMIT",
    "TILE_UPSTREAM_RATE_LIMIT",
)
#: The budgets of wrong passwords (:mod:`mapsvc.web.auth.guessing`): in effect whatever ``RATELIMIT_ENABLED`` says.
PASSWORD_SETTINGS = (
    "LOGIN_FAILURE_LIMIT",
    "LOGIN_ACCOUNT_FAILURE_LIMIT",
    "LOGIN_KNOWN_DEVICE_FAILURE_LIMIT",
    "CONFIRM_FAILURE_LIMIT",
)


def counted_per_worker(limits: LimitSettings) -> list[str]:
    """Return the settings in effect whose counts each worker would keep apart ([] with shared storage)."""
    if not limits.in_memory:
        return []
    names = [name for name in LIMITER_SETTINGS if getattr(limits, name.lower())] if limits.enabled else []
    for name in PASSWORD_SETTINGS:
        value = getattr(limits, name.lower())
        # Unset (None), the known devices' budget is three times the account's: in effect with it.
        derived = name == "LOGIN_KNOWN_DEVICE_FAILURE_LIMIT" and value is None
        if value or (derived and limits.login_account_failure_limit):
            names.append(name)
    return names


def refusal(limits: LimitSettings, workers: int, intake: bool = False) -> str | None:
    """Return why ``workers`` workers (and the intake worker) must not start with these limits, or None."""
    processes = workers + intake
    names = counted_per_worker(limits) if processes > 1 else []
    if not names:
        return None
    asked = f"--workers {workers}" + (" --intake-worker" if intake else "")
    return (
        f'{asked} with RATELIMIT_STORAGE_URI "{limits.storage_uri}": each worker '
        f"would count apart, so each of these would let through {processes} times its number: "
        f"{', '.join(names)}. Give the workers one store they share, e.g. "
        "MAPSVC_RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0 (pip install 'mapsvc[redis]'; a Redis without "
        'persistence, see docs/accounts.md, "Rate limits"), or serve with --workers 1 (and more --threads) '
        "and no intake worker."
    )
