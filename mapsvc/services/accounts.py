"""The organisation's account rules, from the settings: passwords and two-factor sign-in."""

from __future__ import annotations

from flask import current_app

from mapsvc.settings import settings
from mapsvc.store.accounts import AccountPolicy, password_hasher
from mapsvc.store.totp import TotpPolicy


def account_policy() -> AccountPolicy:
    """Return the organisation's password and two-factor rules (``settings().accounts``)."""
    accounts = settings().accounts
    return AccountPolicy(
        hasher=password_hasher(accounts.argon2_profile),
        min_length=accounts.password_min_length,
        require_staff_totp=accounts.require_staff_totp,
    )


def totp_policy() -> TotpPolicy:
    """Return the two-factor rules: the sealing key (checked at start-up) and how wrong codes wait."""
    accounts = settings().accounts
    return TotpPolicy(
        box=current_app.extensions["mapsvc.totp_box"],
        max_failures=accounts.totp_max_failures,
        wait_base=accounts.totp_wait_base,
        wait_max=accounts.totp_wait_max,
        require_staff=accounts.require_staff_totp,
    )
