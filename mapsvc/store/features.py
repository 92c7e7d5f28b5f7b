"""Pages of one category's published events, for the OGC API – Features collections.

The same events and weights as the public layers (``layer_events``), read as pages in a fixed
order (newest bucket first, then id) with a count of all that match, so that a GIS client can
walk every page. Which buckets a page may show is the caller's decision (see
``mapsvc.web.ogc.views``); this module only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, select
from sqlalchemy.orm import Session

from mapsvc.core.decay import to_epoch, weight
from mapsvc.core.events import LayerEvent, PublicEvent
from mapsvc.core.policy import CategoryPolicy
from mapsvc.core.trust import Status
from mapsvc.store.events import PUBLIC_COLUMNS
from mapsvc.store.models import EVENT_POINT, Event
from mapsvc.store.spatial import in_bbox


@dataclass(frozen=True)
class FeatureQuery:
    """One page of one category's events.

    Attributes
    ----------
    policy : CategoryPolicy
        The category read.
    at : datetime
        The moment weights are computed for.
    buckets : tuple of datetime
        (oldest, newest) bucket starts that may be shown at all, both included.
    bbox : tuple of float
        (min lon, min lat, max lon, max lat), edges included.
    after, until : datetime or None
        Only buckets whose interval ``[start, start + bucket)`` meets ``[after, until]``.
    limit, offset : int
        The page: at most ``limit`` events after skipping ``offset``.

    """

    policy: CategoryPolicy
    at: datetime
    buckets: tuple[datetime, datetime]
    bbox: tuple[float, float, float, float]
    after: datetime | None = None
    until: datetime | None = None
    limit: int = 10
    offset: int = 0


def _where(session: Session, query: FeatureQuery) -> ColumnElement[bool]:
    oldest, newest = query.buckets
    conditions = [
        Event.category == query.policy.name,
        Event.bucket_start >= oldest,
        Event.bucket_start <= newest,
        in_bbox(session, Event.lat, Event.lon, EVENT_POINT, query.bbox),
        Event.status == Status.PUBLISHED.value,
    ]
    if query.until is not None:
        conditions.append(Event.bucket_start <= query.until)
    if query.after is not None:
        # The bucket [start, start + bucket_s) ends after ``after``.
        conditions.append(Event.bucket_start > query.after - _bucket(query.policy))
    return and_(*conditions)


def _bucket(policy: CategoryPolicy) -> timedelta:
    return timedelta(seconds=policy.bucket_s)


def _layer_event(row: Row[Any], query: FeatureQuery) -> LayerEvent:
    event = PublicEvent._make(row)
    return LayerEvent(event, weight(to_epoch(query.at) - to_epoch(event.bucket_start), query.policy.half_life_s))


def feature_page(session: Session, query: FeatureQuery) -> tuple[list[LayerEvent], int]:
    """Return one page of events (newest bucket first, then by id) and how many match in all."""
    where = _where(session, query)
    matched = int(session.scalar(select(func.count()).select_from(Event).where(where)) or 0)
    rows = session.execute(
        select(*PUBLIC_COLUMNS)
        .where(where)
        .order_by(Event.bucket_start.desc(), Event.public_id)
        .limit(query.limit)
        .offset(query.offset)
    ).all()
    return [_layer_event(row, query) for row in rows], matched


def feature_by_id(session: Session, query: FeatureQuery, public_id: str) -> LayerEvent | None:
    """Return the event with ``public_id`` if the query's page conditions (not its paging) admit it."""
    row = session.execute(select(*PUBLIC_COLUMNS).where(_where(session, query), Event.public_id == public_id)).first()
    return None if row is None else _layer_event(row, query)
