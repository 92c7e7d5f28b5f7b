"""Idempotency keys of reports: a resend whose first answer was lost is answered, never stored twice.

A phone (or an integration) makes a random key for each report once and sends it with every try
(the ``Idempotency-Key`` header). The first try that is stored keeps a row, in the same
transaction as the report: the key's SHA-256 (the key is 128 random bits, so the hash cannot be
turned back into it by trying keys), the receipt the sender got (report id and withdrawal code)
sealed with AES-256-GCM under a key derived from the idempotency key by HKDF-SHA256, and the day
the row expires. A later try with the key is answered with that receipt, opened with the key it
carries. Without the key a row tells nothing: not which report it belongs to, nor when it was
made. Nothing of the request is kept (no hash of the body or the point: an exact point's hash
could be found again by trying the places of a city).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import date

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from mapsvc.store.db import affected_rows
from mapsvc.store.models import IntakeKey

_NONCE_BYTES = 12
_HKDF_INFO = b"mapsvc intake receipt v1"


@dataclass(frozen=True)
class KeptReceipt:
    """What a sender of a stored report got back, and gets again for a resend: its id and withdrawal code."""

    report_id: str
    withdrawal_code: str


def key_hash(key: str) -> str:
    """Return the hex SHA-256 of an idempotency key, as the row is found by."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def _sealing_key(key: str) -> bytes:
    """Return the AES-256 key derived from an idempotency key (independent of its hash)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(key.encode("ascii"))


def seal(key: str, receipt: KeptReceipt) -> str:
    """Return ``receipt`` sealed under the idempotency key, bound to its row, as stored."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    plain = json.dumps([receipt.report_id, receipt.withdrawal_code]).encode()
    sealed = AESGCM(_sealing_key(key)).encrypt(nonce, plain, key_hash(key).encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def open_sealed(key: str, stored: str) -> KeptReceipt | None:
    """Return the receipt sealed in ``stored``, or None when the key does not open it."""
    try:
        raw = base64.urlsafe_b64decode(stored.encode())
        plain = AESGCM(_sealing_key(key)).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], key_hash(key).encode())
        report_id, code = json.loads(plain)
    except (binascii.Error, InvalidTag, ValueError, TypeError):
        return None
    return KeptReceipt(report_id=str(report_id), withdrawal_code=str(code))


def recall(session: Session, key: str) -> KeptReceipt | None:
    """Return the receipt of the report stored with ``key``, or None if there is none.

    A row past its day that is not deleted yet still answers: a resend that late would be
    refused as too old anyway, and storing it again would collide with the row.
    """
    stored = session.scalar(select(IntakeKey.sealed_receipt).where(IntakeKey.key_hash == key_hash(key)))
    return None if stored is None else open_sealed(key, stored)


def remember(session: Session, key: str, receipt: KeptReceipt, expires_on: date) -> None:
    """Keep the receipt of a report stored with ``key`` until ``expires_on``, in the caller's transaction.

    A second report with the same key breaks the table's primary key (IntegrityError): the
    caller rolls its transaction back and answers the first one's receipt.
    """
    session.execute(
        insert(IntakeKey).values(key_hash=key_hash(key), sealed_receipt=seal(key, receipt), expires_on=expires_on)
    )


def forget_expired(session: Session, today: date) -> int:
    """Delete the rows whose day has come; return how many.

    PostgreSQL skips rows another transaction is deleting now (intake runs this in every write,
    and two intakes must not wait for each other over the same rows).
    """
    expired = select(IntakeKey.key_hash).where(IntakeKey.expires_on <= today).with_for_update(skip_locked=True)
    return affected_rows(session.execute(delete(IntakeKey).where(IntakeKey.key_hash.in_(expired)))) or 0
