"""A fresh sign-in before security changes: a session left open on a seized phone cannot make them.

Changing the password or two-factor, making API tokens, and an admin's changes to roles,
accounts and invitations need a session that signed in, or confirmed the password (and the
two-factor code, where it is on), at most ``REAUTH_MINUTES`` ago. Otherwise the person is sent to
``/account/confirm`` and back to the page they came from. Taking access away (signing out
everywhere, revoking a token or an invitation) needs no confirmation: it never helps whoever holds
a stolen session, and the owner may need it in a hurry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from mapsvc.core.errors import InvalidInput, MapsvcError
from mapsvc.services.accounts import account_policy, totp_policy
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.accounts import get_account, password_matches
from mapsvc.store.logins import mark_fresh
from mapsvc.store.models import Account
from mapsvc.store.totp import check_totp, codes_wait_until
from mapsvc.web.auth.guessing import begin_confirmation, end_attempt
from mapsvc.web.auth.identity import current_identity
from mapsvc.web.auth.redirects import local_path, safe_next

bp = Blueprint("reauth", __name__)

View = TypeVar("View", bound=Callable[..., Any])


def fresh_until(now: datetime) -> datetime:
    """Return until when a sign-in (or a confirmation) made ``now`` counts as fresh."""
    return now + settings().accounts.reauth


def is_fresh() -> bool:
    """Return whether this request's session signed in or confirmed recently enough for a security change."""
    until: datetime | None = g.get("fresh_until")
    return until is not None and until > settings().now()


def fresh_sign_in(back: str) -> Callable[[View], View]:
    """Let the view run only for a fresh session; send others to confirm, then to endpoint ``back``."""

    def decorate(view: View) -> View:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if not is_fresh():
                return redirect(url_for("reauth.confirm", next=url_for(back)), 303)
            return view(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate


def code_error(account: Account, now: datetime, status: int = 422) -> InvalidInput:
    """Return the error for a refused code: wrong (``status``), or codes waiting after too many wrong ones."""
    until = codes_wait_until(account, now)
    if until is None:
        return InvalidInput(_("that code is wrong or was used already"), "code", status=status)
    minutes = max(1, math.ceil((until - now) / timedelta(minutes=1)))
    return InvalidInput(_("too many wrong codes: try again in %(minutes)s min", minutes=minutes), "code", status=429)


def _confirm_page(account: Account, error: MapsvcError | None = None) -> tuple[str, int]:
    next_path = local_path(request.values.get("next")) or ""
    page = render_template("auth/confirm.html", account=account, next=next_path, error=error)
    return page, (error.status if error else 200)


@bp.get("/account/confirm")
def confirm() -> tuple[str, int]:
    """Ask for the password (and code) again before a security change."""
    with get_store().reader() as session:
        account = get_account(session, current_identity().account_id or 0)
    return _confirm_page(account)


def _check(account: Account, password: str, code: str, now: datetime) -> MapsvcError | None:
    """Return why the confirmation fails (wrong or throttled password, wrong or waiting code), or None.

    Wrong passwords count per account, over every source and browser (``CONFIRM_FAILURE_LIMIT``):
    a signed-in phone in other hands gets few guesses, and its owner can sign in again instead.
    """
    attempt = begin_confirmation(account.id)
    right = password_matches(account, password, account_policy(), throttled=not attempt.allowed)
    end_attempt(attempt, right)
    if not right:
        return InvalidInput(
            _("wrong password, or too many wrong ones: wait a while, or sign out and sign in again"), "password"
        )
    if account.totp_secret is not None and not check_totp(account, code, now, totp_policy()):
        return code_error(account, now)
    return None


@bp.post("/account/confirm")
def confirm_submit() -> tuple[str, int] | Response:
    """Check the password (and code); the session then counts as fresh for ``REAUTH_MINUTES``."""
    now = settings().now()
    with get_store().writing() as session:
        account = get_account(session, current_identity().account_id or 0)
        error = _check(account, request.form.get("password", ""), request.form.get("code", ""), now)
        if error is None:
            mark_fresh(session, g.login_token, fresh_until(now))
    if error is not None:
        return _confirm_page(account, error)
    return redirect(safe_next(request.form.get("next")), 303)
