"""The organisation's account rules, from the configuration: passwords and two-factor sign-in."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from mapsvc.store.accounts import AccountPolicy, password_hasher
from mapsvc.store.totp import TotpPolicy


def account_policy() -> AccountPolicy:
    """Return the organisation's password and two-factor rules from the configuration."""
    config = current_app.config
    return AccountPolicy(
        hasher=password_hasher(config["ARGON2_PROFILE"]),
        min_length=int(config["PASSWORD_MIN_LENGTH"]),
        require_staff_totp=bool(config["REQUIRE_STAFF_TOTP"]),
    )


def totp_policy() -> TotpPolicy:
    """Return the two-factor rules: the sealing key (checked at start-up) and how wrong codes wait."""
    config = current_app.config
    return TotpPolicy(
        box=current_app.extensions["mapsvc.totp_box"],
        max_failures=int(config["TOTP_MAX_FAILURES"]),
        wait_base=timedelta(minutes=float(config["TOTP_WAIT_MINUTES"])),
        wait_max=timedelta(minutes=float(config["TOTP_WAIT_MAX_MINUTES"])),
        require_staff=bool(config["REQUIRE_STAFF_TOTP"]),
    )
