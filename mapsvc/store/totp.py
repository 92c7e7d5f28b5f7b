"""Two-factor sign-in: TOTP secrets sealed at rest, codes accepted once, wrong codes slowed down.

A TOTP secret signs its holder in (with the password), so a seized database must not hold it in
the clear. It is stored sealed with AES-256-GCM under ``TOTP_ENCRYPTION_KEY``, with the account's
id as associated data: a sealed secret copied into another account's row does not open there.
Older keys (``TOTP_ENCRYPTION_OLD_KEYS``) still open secrets until ``mapsvc accounts
encrypt-secrets`` seals them all again under the current key.

Wrong codes have their own counter, apart from the password's: after ``max_failures`` in a row,
each further wrong code makes the account's codes wait twice as long as the last (from
``wait_base``, at most ``wait_max``), and only a right code starts the count again. A right
password changes nothing here: whoever reaches the code step knows it already.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from mapsvc.core.errors import InvalidInput, MapsvcError
from mapsvc.core.roles import STAFF_ROLES, Role
from mapsvc.store.accounts import MINUTE, round_up
from mapsvc.store.models import Account

TOTP_STEP_S = 30
#: Marks a sealed secret (and its format's version); a plain base32 secret never starts so.
SEALED_PREFIX = "gcm1:"
PLAIN_SECRET = re.compile(r"[A-Z2-7]{16,64}")
_NONCE_BYTES = 12

log = logging.getLogger(__name__)


class TotpUnavailable(MapsvcError):
    """The server cannot seal or open TOTP secrets (no key, a wrong key, or a secret left unsealed)."""

    status = 503


def _unavailable(reason: str) -> TotpUnavailable:
    """Log why for the operator (no secret, no account) and return the error the person sees."""
    log.warning("two-factor sign-in unavailable: %s", reason)
    return TotpUnavailable(_("two-factor sign-in is unavailable on this server; tell an admin"), "code")


@dataclass(frozen=True)
class SecretBox:
    """Seals TOTP secrets with the first key and opens them with any key, each bound to one account.

    The keys are ``TOTP_ENCRYPTION_KEY`` and then ``TOTP_ENCRYPTION_OLD_KEYS``, checked and decoded
    at start-up (``settings().accounts.totp_keys``).
    """

    keys: tuple[bytes, ...] = field(repr=False)

    @staticmethod
    def _bound_to(account_id: int) -> bytes:
        return f"mapsvc totp secret of account {account_id}".encode()

    def seal(self, secret: str, account_id: int) -> str:
        """Return ``secret`` sealed under the current key for account ``account_id``, as stored."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = AESGCM(self.keys[0]).encrypt(nonce, secret.encode(), self._bound_to(account_id))
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def _opened(self, stored: str, account_id: int) -> str | None:
        """Return the secret of a sealed value, or None (unsealed, malformed, another key, another account)."""
        if not stored.startswith(SEALED_PREFIX):
            return None
        try:
            raw = base64.urlsafe_b64decode(stored[len(SEALED_PREFIX) :].encode())
        except (binascii.Error, ValueError):
            return None
        for key in self.keys:
            try:
                plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], self._bound_to(account_id))
            except (InvalidTag, ValueError):
                continue
            return plain.decode()
        return None

    def open(self, stored: str, account_id: int) -> str:
        """Return the secret of a sealed value, or raise TotpUnavailable (unsealed, another key, another account)."""
        secret = self._opened(stored, account_id)
        if secret is None:
            raise _unavailable("a stored TOTP secret is unsealed, or opens with none of the configured keys")
        return secret

    def can_open(self, stored: str, account_id: int) -> bool:
        """Return whether some key opens ``stored`` for this account."""
        return self._opened(stored, account_id) is not None

    def opens_with_current_key(self, stored: str, account_id: int) -> bool:
        """Return whether the current key (not an older one) opens ``stored``."""
        return SecretBox(self.keys[:1]).can_open(stored, account_id)


@dataclass(frozen=True)
class TotpPolicy:
    """The organisation's two-factor rules: the key, and how wrong codes are slowed down."""

    box: SecretBox | None
    max_failures: int = 5
    wait_base: timedelta = timedelta(minutes=1)
    wait_max: timedelta = timedelta(hours=4)
    require_staff: bool = False


def _box(policy: TotpPolicy) -> SecretBox:
    if policy.box is None:
        raise _unavailable("TOTP_ENCRYPTION_KEY is not set")
    return policy.box


def new_totp_secret() -> str:
    """Return a fresh base32 TOTP secret."""
    return pyotp.random_base32()


def totp_uri(secret: str, username: str, issuer: str = "mapsvc") -> str:
    """Return the otpauth:// URI an authenticator app reads."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def totp_step(secret: str, code: str, now: datetime, after: int | None) -> int | None:
    """Return the time step ``code`` is valid for (now, or one step either side), if later than ``after``."""
    code = re.sub(r"\s", "", str(code or ""))
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // TOTP_STEP_S
    for step in (current - 1, current, current + 1):
        expected = totp.at(step * TOTP_STEP_S)
        if secrets.compare_digest(expected, code) and (after is None or step > after):
            return step
    return None


def codes_wait_until(account: Account, now: datetime) -> datetime | None:
    """Return until when the account's codes are not checked (after too many wrong ones), if later than now."""
    until = account.totp_wait_until
    return until if until is not None and until > now else None


def _count_wrong_code(account: Account, now: datetime, policy: TotpPolicy) -> None:
    """Count a wrong code; past the allowance, make codes wait, twice as long each time, up to the cap."""
    account.totp_failures += 1
    beyond = account.totp_failures - policy.max_failures
    if beyond >= 0:
        wait = min(policy.wait_base * 2 ** min(beyond, 30), policy.wait_max)
        account.totp_wait_until = round_up(now + wait, MINUTE)  # not the second of the last wrong code


def _lock(account: Account) -> None:
    """Read the account's row again and keep it locked to the end of the transaction.

    Codes checked in parallel (from several half-signed-in browsers) would otherwise each read
    the same count and last step under READ COMMITTED, and write them back: most wrong codes
    uncounted, a code accepted twice. PostgreSQL takes the row with ``FOR UPDATE``; SQLite,
    which has no such clause, lets one writer at a time begin (``BEGIN IMMEDIATE``).
    """
    session = object_session(account)
    if session is not None:
        session.refresh(account, with_for_update=True)


def check_totp(account: Account, code: str, now: datetime, policy: TotpPolicy) -> bool:
    """Accept a code of the account's secret once; a wrong one counts towards the codes' wait.

    While the codes wait, no code is checked (the caller tells the person how long, with
    :func:`codes_wait_until`). Only a right code resets the count. The account's row is locked
    for the rest of the caller's transaction, which must be a writing one.
    """
    _lock(account)
    if account.totp_secret is None or codes_wait_until(account, now) is not None:
        return False
    secret = _box(policy).open(account.totp_secret, account.id)
    step = totp_step(secret, code, now, account.totp_last_step)
    if step is None:
        _count_wrong_code(account, now, policy)
        return False
    account.totp_last_step, account.totp_failures, account.totp_wait_until = step, 0, None
    return True


def enable_totp(account: Account, secret: str, code: str, now: datetime, policy: TotpPolicy) -> None:
    """Turn two-factor on with ``secret`` once a code from the authenticator proves it was set up."""
    box = _box(policy)
    if not PLAIN_SECRET.fullmatch(secret or ""):
        raise InvalidInput(_("the two-factor secret is malformed; start again"), "secret")
    step = totp_step(secret, code, now, None)
    if step is None:
        raise InvalidInput(_("that code does not match; check the authenticator's clock and try again"), "code")
    account.totp_secret, account.totp_last_step = box.seal(secret, account.id), step
    account.totp_failures, account.totp_wait_until = 0, None


def disable_totp(account: Account, policy: TotpPolicy) -> None:
    """Turn two-factor off, unless the organisation requires it for this role."""
    if policy.require_staff and Role(account.role) in STAFF_ROLES:
        raise InvalidInput(_("two-factor sign-in is required for staff roles"), "totp", status=409)
    account.totp_secret, account.totp_last_step = None, None
    account.totp_failures, account.totp_wait_until = 0, None


def seal_all(session: Session, box: SecretBox) -> tuple[int, int]:
    """Seal every plain secret and every secret under an older key with the current key.

    Returns how many were sealed anew and how many cannot be opened (another key, or moved from
    another account); those are left as they are.
    """
    resealed = unreadable = 0
    for account in session.scalars(select(Account).where(Account.totp_secret.is_not(None))):
        stored = account.totp_secret or ""
        if PLAIN_SECRET.fullmatch(stored):
            account.totp_secret = box.seal(stored, account.id)
        elif not box.can_open(stored, account.id):
            unreadable += 1
            continue
        elif box.opens_with_current_key(stored, account.id):
            continue
        else:
            account.totp_secret = box.seal(box.open(stored, account.id), account.id)
        resealed += 1
    return resealed, unreadable


def secrets_problem(session: Session, box: SecretBox | None, require_staff: bool) -> str | None:
    """Return why the stored TOTP secrets cannot be used as configured (for the operator), or None."""
    stored = [
        (a.id, a.totp_secret or "") for a in session.scalars(select(Account).where(Account.totp_secret.is_not(None)))
    ]
    if box is None:
        if stored or require_staff:
            return "TOTP_ENCRYPTION_KEY is not set, but two-factor sign-in is in use or required; see docs/accounts.md"
        return None
    plain = sum(1 for _id, value in stored if PLAIN_SECRET.fullmatch(value))
    if plain:
        return f"{plain} TOTP secrets are stored in plain text: run `mapsvc accounts encrypt-secrets`"
    unreadable = sum(1 for account_id, value in stored if not box.can_open(value, account_id))
    if unreadable:
        return f"TOTP_ENCRYPTION_KEY does not open {unreadable} stored TOTP secrets: is it the right key?"
    return None
