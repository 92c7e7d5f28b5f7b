"""Accounts: invitations, pseudonymous accounts, passwords (argon2), roles.

Nothing here knows about the client: no address, no user agent. Wrong passwords are therefore
not counted here: the web layer slows them down per source (:mod:`mapsvc.web.auth.guessing`), and
two-factor codes, with their own count, are in :mod:`mapsvc.store.totp`. Invitation codes are
stored as SHA-256, passwords as argon2id; times that need no precision are kept to the hour, and
the ends of sessions and waits are rounded up to the minute (:func:`round_up`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from mapsvc.core.errors import InvalidInput, NotFound
from mapsvc.core.roles import CAPABILITIES, STAFF_ROLES, Role
from mapsvc.settings import PASSWORD_MAX_LENGTH
from mapsvc.store.db import affected_rows
from mapsvc.store.models import Account, ApiToken, Invitation, LoginSession

USERNAME = re.compile(r"^\w[\w.-]{2,39}$")
#: Fewer different characters than this is a pattern, not a password ("aaaa...", "abab...").
PASSWORD_MIN_DISTINCT = 6


@dataclass(frozen=True)
class AccountPolicy:
    """The organisation's rules for passwords and whether staff must use two-factor sign-in."""

    hasher: PasswordHasher
    min_length: int = 12
    require_staff_totp: bool = False


@lru_cache(maxsize=8)
def password_hasher(profile: str) -> PasswordHasher:
    """Return the argon2 hasher of a profile of ``argon2.profiles`` (e.g. ``RFC_9106_LOW_MEMORY``)."""
    try:
        return PasswordHasher.from_parameters(getattr(profiles, profile))
    except AttributeError:
        raise ValueError(f"ARGON2_PROFILE {profile!r} is not a profile of argon2.profiles") from None


@lru_cache(maxsize=8)
def _decoy_hash(hasher: PasswordHasher) -> str:
    """Return a hash to verify against when there is no account, so that both cases take as long."""
    return hasher.hash(secrets.token_urlsafe(16))


def secret_hash(secret: str) -> str:
    """Return the SHA-256 of a high-entropy secret (a code or token), as stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_hour(moment: datetime) -> datetime:
    """Return ``moment`` cut to the hour."""
    return moment.replace(minute=0, second=0, microsecond=0)


def round_up(moment: datetime, step: timedelta) -> datetime:
    """Return ``moment`` rounded up to a whole ``step`` of the UTC clock (a minute, an hour).

    For stored ends of things (a session, a wait, an invitation): rounded up, nothing ends early,
    and the row does not tell to the second when it was begun.
    """
    past = (moment - EPOCH) % step  # exact: timedeltas count whole microseconds
    return moment + (step - past) % step


def parse_role(value: object, field: str = "role") -> Role:
    """Return the account role named by ``value``; anonymous is not an account role."""
    try:
        role = Role(str(value))
    except ValueError:
        role = Role.ANONYMOUS
    if role is Role.ANONYMOUS:
        choices = ", ".join(r.value for r in Role if r is not Role.ANONYMOUS)
        raise InvalidInput(_("%(field)s must be one of: %(choices)s", field=field, choices=choices), field)
    return role


def normal_username(value: object) -> str:
    """Return the username as stored (NFKC, lower case), or raise naming the rule."""
    username = unicodedata.normalize("NFKC", str(value or "")).strip().lower()
    if not USERNAME.match(username):
        raise InvalidInput(
            _("username must be 3 to 40 letters, digits, '.', '-' or '_', starting with a letter or digit"),
            "username",
        )
    return username


def check_password(password: object, username: str, min_length: int, field: str = "password") -> str:
    """Return ``password`` if it is long and varied enough, else raise naming the rule."""
    text = str(password or "")
    if not min_length <= len(text) <= PASSWORD_MAX_LENGTH:
        raise InvalidInput(
            _("%(field)s must be %(low)s to %(high)s characters long", field=field, low=min_length, high=256), field
        )
    if len(set(text)) < PASSWORD_MIN_DISTINCT:
        raise InvalidInput(_("%(field)s needs more different characters", field=field), field)
    if username and username in text.lower():
        raise InvalidInput(_("%(field)s must not contain the username", field=field), field)
    return text


def create_account(
    session: Session, username: str, password: str, role: Role, now: datetime, policy: AccountPolicy
) -> Account:
    """Add an account; the username must be free (names are compared in their stored form)."""
    name = normal_username(username)
    check_password(password, name, policy.min_length)
    if session.scalar(select(Account.id).where(Account.username == name)) is not None:
        raise InvalidInput(_("that username is taken"), "username", status=409)
    account = Account(
        username=name, password_hash=policy.hasher.hash(password), role=role.value, created_hour=to_hour(now)
    )
    session.add(account)
    session.flush()
    return account


def make_invitation(
    session: Session, role: Role, days: int, now: datetime, created_by: int | None, max_days: int = 30
) -> str:
    """Store an invitation and return its code: shown once, kept only as a hash."""
    if not 1 <= days <= max_days:
        raise InvalidInput(_("days must lie between 1 and %(max)s", max=max_days), "days")
    code = secrets.token_urlsafe(18)
    session.add(
        Invitation(
            code_hash=secret_hash(code),
            role=role.value,
            expires_at=round_up(now + timedelta(days=days), HOUR),
            created_hour=to_hour(now),
            created_by=created_by,
        )
    )
    return code


def accept_invitation(
    session: Session, code: str, username: str, password: str, now: datetime, policy: AccountPolicy
) -> Account:
    """Make the invited account and use up the invitation, in the caller's transaction."""
    invitation = session.scalars(
        select(Invitation).where(Invitation.code_hash == secret_hash(code.strip())).with_for_update()
    ).one_or_none()
    if invitation is None or invitation.used_by is not None or invitation.expires_at <= now:
        raise InvalidInput(_("this invitation is unknown, used or expired"), "code", status=404)
    account = create_account(session, username, password, Role(invitation.role), now, policy)
    # Only the first of two racing acceptances finds the invitation unused.
    used = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.used_by.is_(None))
        .values(used_by=account.id)
    )
    if affected_rows(used) != 1:
        raise InvalidInput(_("this invitation is unknown, used or expired"), "code", status=404)
    return account


def list_invitations(session: Session) -> list[Invitation]:
    """Return every invitation, newest first."""
    return list(session.scalars(select(Invitation).order_by(Invitation.id.desc())))


def revoke_invitation(session: Session, invitation_id: int) -> Invitation:
    """Delete an unused invitation and return it; a used one is kept as the account's origin."""
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.used_by is not None:
        raise NotFound(_("no unused invitation with that id"))
    session.delete(invitation)
    return invitation


def _verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def find_account(session: Session, username: str) -> Account | None:
    """Return the account of ``username`` (as typed: normalised first), or None for no such name."""
    try:
        name = normal_username(username)
    except InvalidInput:
        name = ""
    return session.scalars(select(Account).where(Account.username == name)).one_or_none()


def authenticate(
    account: Account | None, password: str, policy: AccountPolicy, throttled: bool = False
) -> Account | None:
    """Return the account (from :func:`find_account`) if the password is right and it is not disabled.

    ``throttled`` says the caller has seen too many wrong passwords for this name from this
    source: then the password is not checked at all. An unknown name, a wrong password, a
    throttled attempt and a disabled account all answer None after one argon2 verification, so
    neither the answer nor its time tells which it was.
    """
    if account is None or throttled:
        _verify(policy.hasher, _decoy_hash(policy.hasher), password)
        return None
    if not _verify(policy.hasher, account.password_hash, password) or account.disabled:
        return None
    if policy.hasher.check_needs_rehash(account.password_hash):
        account.password_hash = policy.hasher.hash(password)
    return account


def password_matches(account: Account, password: str, policy: AccountPolicy, throttled: bool = False) -> bool:
    """Return whether ``password`` is the account's (one argon2 verification; a decoy's when ``throttled``)."""
    if throttled:
        _verify(policy.hasher, _decoy_hash(policy.hasher), password)
        return False
    return _verify(policy.hasher, account.password_hash, password)


def change_password(
    session: Session, account: Account, current: str, new: str, policy: AccountPolicy, keep: str | None = None
) -> int:
    """Set a new password after checking the current one; end every other login session.

    A changed password is often a suspected stolen one: the browser that changed it (the
    session of cookie token ``keep``) stays signed in, all others are signed out. Returns how
    many were.
    """
    if not _verify(policy.hasher, account.password_hash, current):
        raise InvalidInput(_("the current password is wrong"), "current_password")
    account.password_hash = policy.hasher.hash(check_password(new, account.username, policy.min_length, "new_password"))
    others = delete(LoginSession).where(LoginSession.account_id == account.id)
    if keep is not None:
        others = others.where(LoginSession.token_hash != secret_hash(keep))
    return affected_rows(session.execute(others))


def needs_second_factor(account: Account, policy: AccountPolicy) -> bool:
    """Return whether signing in takes a TOTP code (or setting one up) after the password."""
    return account.totp_secret is not None or (policy.require_staff_totp and Role(account.role) in STAFF_ROLES)


def get_account(session: Session, account_id: int) -> Account:
    """Return an account by id, or raise NotFound."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(_("no account with that id"))
    return account


def list_accounts(session: Session) -> list[Account]:
    """Return every account by username."""
    return list(session.scalars(select(Account).order_by(Account.username)))


def _active_admins(session: Session) -> int:
    query = select(func.count()).select_from(Account).where(Account.role == Role.ADMIN.value, ~Account.disabled)
    return int(session.scalar(query) or 0)


def has_admin(session: Session) -> bool:
    """Return whether an active admin account exists."""
    return _active_admins(session) > 0


def _keep_an_admin(session: Session, account: Account) -> None:
    if account.role == Role.ADMIN.value and not account.disabled and _active_admins(session) <= 1:
        raise InvalidInput(_("the last admin cannot be disabled or given another role"), "role", status=409)


def sign_out_everywhere(session: Session, account_id: int, tokens: bool = False) -> int:
    """Delete every login session of an account (and its API tokens' validity if asked); return how many.

    Every browser it signed in from is forgotten too: its device cookie's entry no longer counts.
    """
    closed = session.execute(delete(LoginSession).where(LoginSession.account_id == account_id))
    forgotten = Account.browsers_forgotten + 1
    session.execute(update(Account).where(Account.id == account_id).values(browsers_forgotten=forgotten))
    if tokens:
        session.execute(update(ApiToken).where(ApiToken.account_id == account_id).values(revoked=True))
    return affected_rows(closed)


def change_role(session: Session, account: Account, role: Role) -> str:
    """Give an account another role; its sessions and tokens end. Return the old role."""
    old = account.role
    if role.value != old:
        _keep_an_admin(session, account)
        account.role = role.value
        sign_out_everywhere(session, account.id, tokens=True)
    return old


def set_disabled(session: Session, account: Account, disabled: bool) -> None:
    """Disable (ending its sessions and tokens) or enable an account."""
    if disabled and not account.disabled:
        _keep_an_admin(session, account)
        sign_out_everywhere(session, account.id, tokens=True)
    account.disabled = disabled


def role_within(role: Role, owner: Role) -> bool:
    """Return whether ``role`` can do nothing that ``owner`` cannot."""
    return CAPABILITIES[role] <= CAPABILITIES[owner]
