"""Events and reports in the database: intake with merging, withdrawal, layers, pruning."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    DateTime,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from mapsvc.core.decay import from_epoch, to_epoch, weight
from mapsvc.core.events import LayerEvent, PublicEvent
from mapsvc.core.geodesy import geodesic_distance_m, widened_box
from mapsvc.core.heat import cell_of
from mapsvc.core.policy import CategoryPolicy
from mapsvc.core.trust import Hold, Status, Trust, trust_of
from mapsvc.store.db import affected_rows
from mapsvc.store.heat import change_heat
from mapsvc.store.models import EVENT_POINT, Event, HeatSeries, HeatStep, Report
from mapsvc.store.spatial import in_bbox, in_bbox_exactly, is_postgis


class Origin(StrEnum):
    """Where a stored report's point comes from."""

    DEVICE = "device"  # sent already fuzzed (the phone): the server never saw the true point
    DRAWN = "drawn"  # a fresh draw of the server's noise
    REUSED = "reused"  # a point the server drew earlier, published again for a place within theta


@dataclass(frozen=True)
class PublishedReport:
    """A report after fuzzing and time bucketing: everything the store may keep of it."""

    category: str
    perpetrator: str
    lat: float
    lon: float
    bucket_start: datetime
    details: str | None = None
    origin: Origin = Origin.DEVICE


@dataclass(frozen=True)
class Standing:
    """Where a new report stands: sent by a trusted reporter, or held for a moderator (and why)."""

    trusted: bool = False
    hold: Hold | None = None

    @property
    def status(self) -> Status:
        """Return the status of an event this report creates."""
        return Status.PUBLISHED if self.hold is None else Status.PENDING


@dataclass(frozen=True)
class Receipt:
    """The stored report's id and withdrawal code (all a reporter gets back), and its event for the caller's own use.

    ``event_id`` and ``merged`` never leave the process towards a reporter: whether a report
    joined an event depends on events the reporter may not see.
    """

    report_id: str
    withdrawal_code: str
    event_id: str
    merged: bool


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _search_box(lat: float, lon: float, distance_m: float) -> tuple[float, float, float, float]:
    """Return (min lat, max lat, min lon, max lon) around a point that holds the given radius.

    Conservative (:func:`mapsvc.core.geodesy.widened_box`): every point within ``distance_m``
    (geodesic) lies in the box, so the exact distance test that follows it decides alone.
    """
    west, south, east, north = widened_box((lon, lat, lon, lat), distance_m)
    return south, north, west, east


# The intake path runs these for every report; built once, they skip per-call compilation.
_MERGE_CANDIDATES = (
    select(Event.id, Event.public_id, Event.lat, Event.lon, Event.heat_cell)
    .where(
        Event.category == bindparam("category"),
        Event.bucket_start == bindparam("bucket"),
        Event.lat.between(bindparam("lat0"), bindparam("lat1")),
        Event.lon.between(bindparam("lon0"), bindparam("lon1")),
        # Only an event of the same standing absorbs a report: see docs/moderation.md, "What merges into what".
        Event.status == bindparam("status"),
        func.coalesce(Event.held_reason, "") == bindparam("held"),
    )
    .order_by(Event.id)
    .with_for_update()
)
#: The first key of mapsvc's advisory locks ("maps"), apart from other users of the database.
_LOCK_CLASS = 0x6D617073
_CATEGORY_LOCK = select(func.pg_advisory_xact_lock(_LOCK_CLASS, func.hashtext(bindparam("group"))))
# Distinct drawn points in a box, each with the id of the first event published there.
_DRAWN_POINTS = (
    select(Event.lat, Event.lon)
    .where(
        Event.category == bindparam("category"),
        Event.server_drawn == true(),
        Event.lat.between(bindparam("lat0"), bindparam("lat1")),
        Event.lon.between(bindparam("lon0"), bindparam("lon1")),
        Event.status != Status.REJECTED.value,
    )
    .group_by(Event.lat, Event.lon)
    .order_by(func.min(Event.id))
)
_CORROBORATE = (
    update(Event)
    .where(Event.id == bindparam("event_id"))
    .values(
        corroborations=Event.corroborations + 1,
        trust=case((Event.trust == Trust.VERIFIED.value, Trust.VERIFIED.value), else_=bindparam("merged_trust")),
    )
)
_NEW_EVENT = insert(Event).returning(Event.id)
_NEW_REPORT = insert(Report)


def lock_category(session: Session, category: str) -> None:
    """Serialise intake of one category until the transaction ends.

    Two reports of one place must not both find no point to reuse and both draw one, nor both
    find no event to merge into and both create one. SQLite's writers already queue (BEGIN
    IMMEDIATE); PostgreSQL takes a transaction-level advisory lock on the category.
    """
    if is_postgis(session):
        session.connection().execute(_CATEGORY_LOCK, {"group": category})


def drawn_points_near(
    session: Session, category: str, lat: float, lon: float, distance_m: float
) -> list[tuple[float, float]]:
    """Return the distinct points the server drew for ``category`` in a box around (lat, lon), oldest first.

    Rejected events' points are left out (a moderator judged the report false); pending ones
    count, so that a place waiting for moderation is not redrawn on every repeat either.
    """
    lat0, lat1, lon0, lon1 = _search_box(lat, lon, distance_m)
    rows = session.connection().execute(
        _DRAWN_POINTS, {"category": category, "lat0": lat0, "lat1": lat1, "lon0": lon0, "lon1": lon1}
    )
    return [(row.lat, row.lon) for row in rows]


def find_merge_target(
    session: Session, report: PublishedReport, policy: CategoryPolicy, level: float, standing: Standing = Standing()
) -> Any:
    """Return the nearest same-category, same-bucket, same-standing event in merge distance, or None.

    The row has the event's id, public id and heat cell.
    """
    distance = policy.merge_distance_m(level)
    lat0, lat1, lon0, lon1 = _search_box(report.lat, report.lon, distance)
    candidates = (
        session.connection()
        .execute(
            _MERGE_CANDIDATES,
            {
                "category": report.category,
                "bucket": report.bucket_start,
                "lat0": lat0,
                "lat1": lat1,
                "lon0": lon0,
                "lon1": lon1,
                "status": standing.status.value,
                "held": standing.hold.value if standing.hold else "",
            },
        )
        .all()
    )
    if not candidates:
        return None
    distances = geodesic_distance_m(
        [report.lat] * len(candidates),
        [report.lon] * len(candidates),
        [c.lat for c in candidates],
        [c.lon for c in candidates],
    )
    best = int(distances.argmin())
    return candidates[best] if distances[best] <= distance else None


def record_report(
    session: Session,
    report: PublishedReport,
    policy: CategoryPolicy,
    level: float,
    heat_resolution: int,
    standing: Standing = Standing(),
    *,
    category_locked: bool = False,
) -> Receipt:
    """Store a report: merge it into a matching event or create a new event (and its heat if published).

    A merged report changes only the event's corroboration count and trust: the event keeps its
    first published point, so repeated reports of one place never average towards the truth.
    A fresh draw of the server's noise never merges: it becomes an event of its own, so that the
    next report of the place finds it and publishes it again (merging would discard the draw, and
    every repeat would draw afresh). Both ways run the same statements (a merge adds nothing to
    its event's heat step), so the time an answer takes does not tell a reporter whether the
    report joined an event they may not see. ``category_locked``: the caller already holds
    :func:`lock_category` or excludes other writers of events (an import's table lock).
    """
    if not category_locked:
        lock_category(session, report.category)
    found = find_merge_target(session, report, policy, level, standing)
    target = None if report.origin is Origin.DRAWN else found
    cell = cell_of(report.lat, report.lon, heat_resolution) if target is None else target.heat_cell
    # Heat counts published events only; a merge or a held report adds 0, through the same statements.
    change_heat(session, cell, report.bucket_start, policy, int(target is None and standing.hold is None))
    if target is not None:
        event_id, event_public_id = target.id, target.public_id
        merged_trust = Trust.VERIFIED if standing.trusted else Trust.CORROBORATED
        session.connection().execute(_CORROBORATE, {"event_id": event_id, "merged_trust": merged_trust.value})
    else:
        event_public_id = secrets.token_urlsafe(12)
        values = {
            "public_id": event_public_id,
            "category": report.category,
            "perpetrator": report.perpetrator,
            "lat": report.lat,
            "lon": report.lon,
            "bucket_start": report.bucket_start,
            "heat_cell": cell,
            "corroborations": 1,
            "details": report.details,
            "status": standing.status.value,
            "trust": trust_of(1, int(standing.trusted), False).value,
            "held_reason": standing.hold.value if standing.hold else None,
            "server_drawn": report.origin is not Origin.DEVICE,
        }
        event_id = session.connection().execute(_NEW_EVENT, values).scalar_one()
    code = secrets.token_urlsafe(16)
    receipt_id = secrets.token_urlsafe(12)
    session.connection().execute(
        _NEW_REPORT,
        {
            "public_id": receipt_id,
            "event_id": event_id,
            "withdrawal_hash": _hash_code(code),
            "trusted": standing.trusted,
        },
    )
    return Receipt(report_id=receipt_id, withdrawal_code=code, event_id=event_public_id, merged=target is not None)


def withdraw_report(session: Session, report_id: str, code: str, policies: Mapping[str, CategoryPolicy]) -> bool:
    """Delete a report if the code matches; drop its event when no other report backs it.

    Returns whether a report was withdrawn. A wrong code and an unknown id look the same.
    """
    report = session.scalars(select(Report).where(Report.public_id == report_id).with_for_update()).first()
    if report is None or not hmac.compare_digest(report.withdrawal_hash, _hash_code(code)):
        return False
    event = session.get(Event, report.event_id, with_for_update=True)
    session.delete(report)
    session.flush()  # before the event's delete, whose ON DELETE CASCADE would take the report
    if event is not None:
        event.corroborations -= 1
        if event.corroborations <= 0:
            if event.status == Status.PUBLISHED:
                change_heat(session, event.heat_cell, event.bucket_start, policies[event.category], -1)
            session.delete(event)
        else:
            refresh_trust(session, event)
    return True


def refresh_trust(session: Session, event: Event) -> None:
    """Set an event's trust from the reports that back it now (after a withdrawal, merge or split)."""
    trusted = session.scalar(select(func.count()).where(Report.event_id == event.id, Report.trusted.is_(True)))
    event.trust = trust_of(event.corroborations, int(trusted or 0), event.verified_by_staff).value


@dataclass(frozen=True)
class LayerQuery:
    """Which events to show: a moment, a bounding box, categories, a threshold and a cap."""

    at: datetime
    bbox: tuple[float, float, float, float]
    policies: Iterable[CategoryPolicy]
    threshold: float
    limit: int


#: What a public output shows of an event (the layers, the OGC API, the exports): the columns named
#: by :class:`PublicEvent`'s fields, in their order, so that ``PublicEvent._make(row)`` reads a row.
PUBLIC_COLUMNS = tuple(getattr(Event, name) for name in PublicEvent._fields)

# The same, the bucket read as naive UTC: the layers make it aware once per bucket, not per row.
_LAYER_COLUMNS = tuple(
    type_coerce(Event.bucket_start, DateTime()) if name == "bucket_start" else getattr(Event, name)
    for name in PublicEvent._fields
)


def public_event(event: Event) -> PublicEvent:
    """Return what the public sees of a stored event (once it is published)."""
    return PublicEvent._make(getattr(event, name) for name in PublicEvent._fields)


def _visible(
    session: Session, windows: Mapping[str, tuple[datetime, datetime]], bbox: tuple[float, float, float, float]
) -> Any:
    """Return the WHERE clause for events of the given per-category bucket ranges in a bbox."""
    return and_(
        or_(
            *(
                and_(Event.category == name, Event.bucket_start >= oldest, Event.bucket_start <= newest)
                for name, (oldest, newest) in windows.items()
            )
        ),
        in_bbox(session, Event.lat, Event.lon, EVENT_POINT, bbox),
        Event.status == Status.PUBLISHED.value,
    )


def _bucket_counts(windows: Mapping[str, tuple[datetime, datetime]], bbox: tuple[float, float, float, float]) -> Any:
    """Return the statement counting published events in ``bbox`` per (category, bucket) of the windows.

    One select per category, joined by UNION ALL: each is a range of the layer index that the
    index answers alone (an index-only scan on PostgreSQL, a covering index on SQLite), where
    one statement OR-ing the categories made both engines fetch every counted row from the table
    (at a million reports, about twice the time).
    """
    published = Event.status == Status.PUBLISHED.value
    counts = [
        select(Event.category, Event.bucket_start, func.count())
        .where(
            Event.category == name,
            Event.bucket_start >= oldest,
            Event.bucket_start <= newest,
            in_bbox_exactly(Event.lat, Event.lon, bbox),
            published,
        )
        .group_by(Event.category, Event.bucket_start)
        for name, (oldest, newest) in windows.items()
    ]
    return union_all(*counts) if len(counts) > 1 else counts[0]


def layer_events(session: Session, query: LayerQuery) -> tuple[list[LayerEvent], int]:
    """Return the heaviest visible events in view (at most ``limit``) and how many matched.

    A first query counts events per (category, bucket) along the index; weights are a
    function of those two alone, so the counts tell how far back each category must be read
    to fill the limit. The second query then reads only about ``limit`` rows, however many
    events are stored.
    """
    policies = {p.name: p for p in query.policies}
    found_windows = {name: p.visible_buckets(query.at, query.threshold) for name, p in policies.items()}
    windows = {name: window for name, window in found_windows.items() if window is not None}
    if not windows:
        return [], 0
    at_s = to_epoch(query.at)
    connection = session.connection()  # plain rows: no ORM loading on the read path
    histogram = connection.execute(_bucket_counts(windows, query.bbox)).all()
    groups = sorted(
        (
            (weight(at_s - to_epoch(bucket), policies[name].half_life_s), name, bucket, count)
            for name, bucket, count in histogram
        ),
        key=lambda g: -g[0],
    )
    reach: dict[str, tuple[datetime, datetime]] = {}
    taken = 0
    for _, name, bucket, count in groups:
        if taken >= query.limit:
            break
        reach[name] = (bucket, windows[name][1])
        taken += count
    found = []
    if reach:
        rows = connection.execute(  # one fetchall: row-by-row fetching cost more than the rows' use
            select(*_LAYER_COLUMNS).where(_visible(session, reach, query.bbox))
        ).all()
        # Events share few buckets: each (category, bucket) gets its moment and weight once.
        buckets: dict[tuple[str, datetime], tuple[datetime, float]] = {}
        for public_id, name, perpetrator, lat, lon, naive, corroborations, trust in rows:
            if (name, naive) not in buckets:
                bucket = naive.replace(tzinfo=UTC)
                buckets[name, naive] = (bucket, weight(at_s - to_epoch(bucket), policies[name].half_life_s))
            bucket, w = buckets[name, naive]
            event = PublicEvent(public_id, name, perpetrator, lat, lon, bucket, corroborations, trust)
            found.append(LayerEvent(event, w))
    found.sort(key=lambda e: (-e.weight, e.event.public_id))
    return found[: query.limit], sum(count for *_, count in groups)


def prune(
    session: Session, policies: Mapping[str, CategoryPolicy], now: datetime, retention: timedelta, threshold: float
) -> int:
    """Delete events older than the retention period that have faded from every view.

    Heat steps before the same cut are deleted too, but for the last one of each series,
    which stays as the baseline that later counts of live events subtract from.
    Returns the number of events deleted.
    """
    cutoff = now - retention
    cuts = {p.name: min(cutoff, now - timedelta(seconds=p.horizon_s(threshold))) for p in policies.values()}
    conditions = [and_(Event.category == name, Event.bucket_start < cut) for name, cut in cuts.items()]
    deleted = affected_rows(session.execute(delete(Event).where(or_(*conditions)))) or 0
    for name, cut in cuts.items():
        baseline = (
            select(func.max(HeatStep.bucket_start))
            .where(HeatStep.series_id == HeatSeries.id, HeatStep.bucket_start < cut)
            .correlate(HeatSeries)
            .scalar_subquery()
        )
        keep = (
            select(HeatStep.id)
            .join(HeatSeries, HeatSeries.id == HeatStep.series_id)
            .where(HeatStep.bucket_start == baseline)
        )
        in_category = select(HeatSeries.id).where(HeatSeries.category == name)
        session.execute(
            delete(HeatStep).where(
                HeatStep.series_id.in_(in_category), HeatStep.bucket_start < cut, HeatStep.id.not_in(keep)
            )
        )
    return int(deleted)


def oldest_readable(
    now: datetime, retention: timedelta, policies: Iterable[CategoryPolicy], threshold: float
) -> datetime:
    """Return the earliest moment whose layers and heat are still fully held after pruning.

    Pruning keeps what is still visible, so the present is always readable, however short
    the retention.
    """
    longest = max(p.horizon_s(threshold) for p in policies)
    return min(now - retention + timedelta(seconds=longest), now)


def epoch_bucket(at: datetime) -> datetime:
    """Return ``at`` as stored: whole seconds, UTC."""
    return from_epoch(int(to_epoch(at)))
