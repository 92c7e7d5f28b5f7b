"""Moderation: the queue, and every action a moderator takes on an event, each one audited.

Heat counts exactly the published events, so every action that moves an event into or out of
the published set, or moves a published one to another category, cell or bucket, changes the
heat once: removed where it was, added where it is. Each action locks the rows it changes (the
events, in id order, then their heat series, as intake does) and checks the event's state
under the lock, so two moderators cannot both apply one transition.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mapsvc.core.decay import floor_to_bucket
from mapsvc.core.errors import Conflict, InvalidInput, NotFound
from mapsvc.core.events import PublicEvent
from mapsvc.core.policy import CategoryPolicy
from mapsvc.core.trust import Status, Trust
from mapsvc.store.audit import record_action
from mapsvc.store.events import public_event, refresh_trust
from mapsvc.store.heat import change_heat
from mapsvc.store.models import Event, Report


@dataclass(frozen=True)
class Moderator:
    """Who acts (a username, for the audit log), when, and under which category policies."""

    actor: str
    now: datetime
    policies: Mapping[str, CategoryPolicy]


@dataclass(frozen=True)
class QueueReport:
    """One report behind an event, as a moderator sees it: its id and whether it was trusted."""

    id: str
    trusted: bool


@dataclass(frozen=True)
class QueueItem:
    """An event as the moderation queue shows it: what the public sees of it, and beside that what only staff see.

    ``event`` is the public shape (once published); ``status``, ``held_reason``, ``details`` and
    ``reports`` never leave the staff's views.
    """

    event: PublicEvent
    status: str
    held_reason: str | None
    details: str | None
    reports: tuple[QueueReport, ...]


def _reports_of(session: Session, event_ids: Sequence[int]) -> dict[int, list[QueueReport]]:
    """Return the reports of the given events, each event's in the order they came."""
    found: dict[int, list[QueueReport]] = {i: [] for i in event_ids}
    if event_ids:
        rows = session.execute(
            select(Report.event_id, Report.public_id, Report.trusted)
            .where(Report.event_id.in_(event_ids))
            .order_by(Report.id)
        )
        for event_id, public_id, trusted in rows:
            found[event_id].append(QueueReport(public_id, bool(trusted)))
    return found


def _describe(events: Sequence[Event], reports: Mapping[int, list[QueueReport]]) -> list[QueueItem]:
    return [QueueItem(public_event(e), e.status, e.held_reason, e.details, tuple(reports[e.id])) for e in events]


def describe(session: Session, event: Event) -> QueueItem:
    """Return one event as the queue shows it."""
    session.flush()
    return _describe([event], _reports_of(session, [event.id]))[0]


def queue(session: Session, now: datetime, recent: timedelta, limit: int = 100) -> list[QueueItem]:
    """Return pending events first, oldest first; then recent published unverified ones, newest first."""
    pending = session.scalars(select(Event).where(Event.status == Status.PENDING).order_by(Event.id).limit(limit))
    unverified = session.scalars(
        select(Event)
        .where(
            Event.status == Status.PUBLISHED,
            Event.trust == Trust.UNVERIFIED,
            Event.bucket_start >= now - recent,
        )
        .order_by(Event.bucket_start.desc(), Event.id.desc())
        .limit(limit)
    )
    events = [*pending, *unverified]
    return _describe(events, _reports_of(session, [e.id for e in events]))


def event(session: Session, public_id: str) -> QueueItem:
    """Return one event as the queue shows it, whatever its state."""
    found = session.scalars(select(Event).where(Event.public_id == public_id)).first()
    if found is None:
        raise NotFound(_("no event with that id"))
    return describe(session, found)


def _locked(session: Session, public_ids: Sequence[str]) -> list[Event]:
    """Return the events with these public ids, row-locked in id order (so no two actions deadlock)."""
    events = list(
        session.scalars(select(Event).where(Event.public_id.in_(public_ids)).order_by(Event.id).with_for_update())
    )
    by_id = {e.public_id: e for e in events}
    missing = [p for p in public_ids if p not in by_id]
    if missing:
        raise NotFound(_("no event with that id"))
    return [by_id[p] for p in public_ids]


def _heat(session: Session, event: Event, policies: Mapping[str, CategoryPolicy], amount: int) -> None:
    change_heat(session, event.heat_cell, event.bucket_start, policies[event.category], amount)


def _publish(session: Session, event: Event, policies: Mapping[str, CategoryPolicy]) -> None:
    """Move a pending or rejected event into the published set: layers, and heat once."""
    event.status = Status.PUBLISHED.value
    event.held_reason = None
    _heat(session, event, policies, 1)


def _refuse_rejected(event: Event) -> None:
    if event.status == Status.REJECTED:
        raise Conflict(_("the event was rejected; approve it first"))


def approve(session: Session, who: Moderator, public_id: str) -> QueueItem:
    """Publish a pending event, or one rejected by mistake."""
    (event,) = _locked(session, [public_id])
    if event.status == Status.PUBLISHED:
        raise Conflict(_("the event is published already"))
    _publish(session, event, who.policies)
    record_action(session, who.actor, "approve", who.now, event.public_id)
    return describe(session, event)


def reject(session: Session, who: Moderator, public_id: str) -> QueueItem:
    """Reject an event: a published one leaves layers and heat at once; new reports never merge into it."""
    (event,) = _locked(session, [public_id])
    if event.status == Status.REJECTED:
        raise Conflict(_("the event is rejected already"))
    if event.status == Status.PUBLISHED:
        _heat(session, event, who.policies, -1)
    event.status = Status.REJECTED.value
    event.held_reason = None
    record_action(session, who.actor, "reject", who.now, event.public_id)
    return describe(session, event)


def verify(session: Session, who: Moderator, public_id: str) -> QueueItem:
    """Mark an event verified; a pending one is published too (verifying it is approving it)."""
    (event,) = _locked(session, [public_id])
    _refuse_rejected(event)
    if event.verified_by_staff:
        raise Conflict(_("the event is verified already"))
    if event.status == Status.PENDING:
        _publish(session, event, who.policies)
    event.verified_by_staff = True
    event.trust = Trust.VERIFIED.value
    record_action(session, who.actor, "verify", who.now, event.public_id)
    return describe(session, event)


def change_category(session: Session, who: Moderator, public_id: str, category: str) -> QueueItem:
    """Move an event to another category, its time bucket re-cut to that category's bucket.

    A published event's heat leaves the old category's series and joins the new one's.
    """
    if category not in who.policies:
        raise InvalidInput(_("category must be one of: %(choices)s", choices=", ".join(who.policies)), "category")
    (event,) = _locked(session, [public_id])
    _refuse_rejected(event)
    if event.category == category:
        raise Conflict(_("the event is in that category already"))
    published = event.status == Status.PUBLISHED
    if published:
        _heat(session, event, who.policies, -1)
    old = event.category
    event.category = category
    event.bucket_start = floor_to_bucket(event.bucket_start, who.policies[category].bucket_s)
    if published:
        _heat(session, event, who.policies, 1)
    record_action(session, who.actor, "change_category", who.now, event.public_id, f"{old} -> {category}")
    return describe(session, event)


def merge(session: Session, who: Moderator, public_id: str, other_id: str) -> QueueItem:
    """Merge ``other_id`` into ``public_id``: it takes the other's reports, and heat counts one event.

    The kept event keeps its own point and time bucket (the first published point, as intake
    does). It is published when either was: merging a published event into a pending one
    approves the pending one.
    """
    if other_id == public_id:
        _locked(session, [public_id])  # an unknown event is not found, whatever else is wrong
        raise InvalidInput(_("an event cannot be merged into itself"), "other")
    kept, other = _locked(session, [public_id, other_id])
    _refuse_rejected(kept)
    _refuse_rejected(other)
    if kept.category != other.category:
        raise Conflict(_("the events are in different categories; change one's category first"))
    if other.status == Status.PUBLISHED:
        _heat(session, other, who.policies, -1)
        if kept.status != Status.PUBLISHED:
            _publish(session, kept, who.policies)
    session.execute(update(Report).where(Report.event_id == other.id).values(event_id=kept.id))
    kept.corroborations += other.corroborations
    kept.verified_by_staff = kept.verified_by_staff or other.verified_by_staff
    kept.details = kept.details or other.details
    session.delete(other)
    session.flush()
    refresh_trust(session, kept)
    record_action(session, who.actor, "merge", who.now, kept.public_id, f"absorbed {other_id}")
    return describe(session, kept)


def split(session: Session, who: Moderator, public_id: str, report_ids: Sequence[str]) -> QueueItem:
    """Move some of an event's reports to a new event; return the new event.

    Reports keep no point of their own (only the event's published point is stored), so the
    new event starts at the same point, time bucket and category, with the same status; the
    moderator can then change its category, reject it or merge it elsewhere.
    """
    (event,) = _locked(session, [public_id])
    _refuse_rejected(event)
    chosen = set(report_ids)
    if not chosen or len(chosen) != len(report_ids):
        raise InvalidInput(_("reports must list one or more different report ids"), "reports")
    reports = session.scalars(select(Report).where(Report.event_id == event.id).with_for_update()).all()
    if not chosen <= {r.public_id for r in reports}:
        raise InvalidInput(_("reports must all belong to the event"), "reports")
    if len(chosen) == len(reports):
        raise Conflict(_("leave at least one report with the event"))
    new = Event(
        public_id=secrets.token_urlsafe(12),
        category=event.category,
        perpetrator=event.perpetrator,
        lat=event.lat,
        lon=event.lon,
        bucket_start=event.bucket_start,
        heat_cell=event.heat_cell,
        corroborations=len(chosen),
        status=event.status,
        held_reason=event.held_reason,
        trust=Trust.UNVERIFIED.value,
    )
    session.add(new)
    session.flush()
    for report in reports:
        if report.public_id in chosen:
            report.event_id = new.id
    event.corroborations -= len(chosen)
    session.flush()
    refresh_trust(session, event)
    refresh_trust(session, new)
    if new.status == Status.PUBLISHED:
        _heat(session, new, who.policies, 1)
    record_action(session, who.actor, "split", who.now, event.public_id, f"{len(chosen)} reports to {new.public_id}")
    return describe(session, new)
