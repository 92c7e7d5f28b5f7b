"""The staff audit log: who did what to which event, to the hour; nothing about reporters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mapsvc.store.models import AuditEntry


def record_action(
    session: Session, actor: str, action: str, now: datetime, event_public_id: str | None = None, detail: str = ""
) -> None:
    """Add one entry, its time cut to the hour."""
    session.add(
        AuditEntry(
            at_hour=now.replace(minute=0, second=0, microsecond=0),
            actor=actor,
            action=action,
            event_public_id=event_public_id,
            detail=detail[:200] or None,
        )
    )


def recent_actions(session: Session, limit: int = 200, before_id: int | None = None) -> list[AuditEntry]:
    """Return the newest entries first, ``limit`` of them, older than ``before_id`` if given."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(session.scalars(query))
