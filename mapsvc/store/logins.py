"""Login sessions and API tokens: random secrets handed out once and stored as SHA-256.

A seized database holds no secret that signs anyone in: the cookie's token and the API token
exist only with their holder. Deleting a session row signs that browser out.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from mapsvc.core.errors import InvalidInput, NotFound
from mapsvc.core.roles import Role
from mapsvc.core.text import refused_characters
from mapsvc.store.accounts import MINUTE, role_within, round_up, secret_hash, to_hour
from mapsvc.store.models import Account, ApiToken, LoginSession

TOKEN_PREFIX = "mapsvc_"


def open_session(
    session: Session,
    account: Account,
    now: datetime,
    lifetime: timedelta,
    second_factor_done: bool = False,
    fresh_until: datetime | None = None,
) -> str:
    """Store a login session for ``account`` and return the token for its cookie.

    ``second_factor_done`` says a TOTP code was checked in this session; a session without it
    counts as signed in only while the account needs no second factor. ``fresh_until`` is when
    the session stops counting as just signed in (for security changes). Both ends are kept
    rounded up to the minute, so a row does not tell the second its holder signed in. Expired
    sessions of everyone are deleted on the way.
    """
    session.execute(delete(LoginSession).where(LoginSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(
        LoginSession(
            token_hash=secret_hash(token),
            account_id=account.id,
            expires_at=round_up(now + lifetime, MINUTE),
            second_factor_done=second_factor_done,
            fresh_until=None if fresh_until is None else round_up(fresh_until, MINUTE),
        )
    )
    return token


def find_session(session: Session, token: str, now: datetime) -> tuple[LoginSession, Account] | None:
    """Return the unexpired session of a cookie token and its account, unless the account is disabled."""
    row = session.execute(
        select(LoginSession, Account)
        .join(Account, Account.id == LoginSession.account_id)
        .where(LoginSession.token_hash == secret_hash(token), LoginSession.expires_at > now, ~Account.disabled)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def complete_session(
    session: Session, token: str, now: datetime, lifetime: timedelta, fresh_until: datetime | None = None
) -> str:
    """Replace a password-only session by one whose second factor is done (with a new token)."""
    found = find_session(session, token, now)
    if found is None:
        raise NotFound(_("this sign-in has expired; start again"))
    login, account = found
    session.delete(login)
    return open_session(session, account, now, lifetime, second_factor_done=True, fresh_until=fresh_until)


def close_session(session: Session, token: str) -> None:
    """Delete the session of a cookie token, if it exists."""
    session.execute(delete(LoginSession).where(LoginSession.token_hash == secret_hash(token)))


def make_token(session: Session, owner: Account, name: str, role: Role, now: datetime) -> str:
    """Store an API token for ``owner`` with a role no higher than the owner's; return it (shown once)."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 80:
        raise InvalidInput(_("name must be 1 to 80 characters long"), "name")
    if refused_characters(name, lines=False):
        raise InvalidInput(
            _("%(field)s must not hold control characters or broken Unicode (lone surrogates)", field="name"), "name"
        )
    if role is Role.ANONYMOUS or not role_within(role, Role(owner.role)):
        raise InvalidInput(_("a token's role can do no more than its owner's"), "role")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            token_hash=secret_hash(token), name=name, account_id=owner.id, role=role.value, created_hour=to_hour(now)
        )
    )
    return token


def find_token(session: Session, token: str) -> tuple[ApiToken, Account] | None:
    """Return an unrevoked API token and its owner, unless the owner is disabled."""
    row = session.execute(
        select(ApiToken, Account)
        .join(Account, Account.id == ApiToken.account_id)
        .where(ApiToken.token_hash == secret_hash(token), ~ApiToken.revoked, ~Account.disabled)
    ).one_or_none()
    if row is None:
        return None
    api_token, owner = row[0], row[1]
    # A token never outranks its owner, even if the owner's role changed by some other path.
    if not role_within(Role(api_token.role), Role(owner.role)):
        return None
    return api_token, owner


def list_tokens(session: Session, account_id: int | None = None) -> list[tuple[ApiToken, str]]:
    """Return tokens with their owner's username, newest first; only one account's if given."""
    query = select(ApiToken, Account.username).join(Account, Account.id == ApiToken.account_id)
    if account_id is not None:
        query = query.where(ApiToken.account_id == account_id)
    return [(row[0], row[1]) for row in session.execute(query.order_by(ApiToken.id.desc()))]


def revoke_token(session: Session, token_id: int, owner_id: int | None = None) -> ApiToken:
    """Revoke a token (only the owner's own when ``owner_id`` is given) and return it."""
    token = session.get(ApiToken, token_id)
    if token is None or (owner_id is not None and token.account_id != owner_id):
        raise NotFound(_("no API token with that id"))
    token.revoked = True
    return token


def mark_second_factor_done(session: Session, token: str) -> None:
    """Record that this session proved a TOTP code (when two-factor is turned on from it)."""
    session.execute(
        update(LoginSession).where(LoginSession.token_hash == secret_hash(token)).values(second_factor_done=True)
    )


def mark_fresh(session: Session, token: str, until: datetime) -> None:
    """Record that this session's holder gave the password (and code) again, valid ``until`` (up to the minute)."""
    fresh = round_up(until, MINUTE)
    session.execute(update(LoginSession).where(LoginSession.token_hash == secret_hash(token)).values(fresh_until=fresh))
