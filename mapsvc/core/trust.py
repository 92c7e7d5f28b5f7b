"""Event status and trust: where a new report stands, and what its event's reports add up to.

Plain functions over plain values; the store applies them, the tests check them without a
database.
"""

from __future__ import annotations

from enum import StrEnum

from mapsvc.core.policy import CategoryPolicy


class Status(StrEnum):
    """Whether an event is shown: only published events reach layers and heat."""

    PUBLISHED = "published"
    PENDING = "pending"  # waits for a moderator
    REJECTED = "rejected"  # kept so that new reports never merge into it


class Trust(StrEnum):
    """How far an event is believed, as the map shows it."""

    UNVERIFIED = "unverified"
    CORROBORATED = "corroborated"  # two or more reports merged
    VERIFIED = "verified"  # a trusted peer reported it, or a moderator verified it


class Hold(StrEnum):
    """Why a pending event waits."""

    PREMODERATION = "premoderation"  # its category waits for a moderator
    BURST = "burst"  # one source sent too many reports too fast


def hold_for(policy: CategoryPolicy, trusted: bool, burst: bool) -> Hold | None:
    """Return why a new report must wait for a moderator, or None when it is published at once.

    A trusted reporter's report is never held; otherwise the category's pre-moderation comes
    before the burst hold (both wait, but the moderator sees the category's reason first).
    """
    if trusted:
        return None
    if policy.premoderation:
        return Hold.PREMODERATION
    return Hold.BURST if burst else None


def trust_of(reports: int, trusted_reports: int, verified_by_staff: bool) -> Trust:
    """Return the trust level of an event backed by ``reports`` reports.

    Parameters
    ----------
    reports : int
        Reports merged into the event (its corroboration count).
    trusted_reports : int
        How many of them came from trusted peers or staff.
    verified_by_staff : bool
        Whether a moderator marked the event verified.

    """
    if reports < 0 or trusted_reports < 0 or trusted_reports > reports:
        raise ValueError("report counts must satisfy 0 <= trusted_reports <= reports")
    if verified_by_staff or trusted_reports > 0:
        return Trust.VERIFIED
    return Trust.CORROBORATED if reports >= 2 else Trust.UNVERIFIED
