"""Advocacy reads and districts in the database: counted events, public events, district polygons."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from shapely.geometry import mapping, shape
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mapsvc.core.districts import District
from mapsvc.core.events import PublicEvent
from mapsvc.core.policy import CategoryPolicy
from mapsvc.core.trust import Status
from mapsvc.store.events import PUBLIC_COLUMNS
from mapsvc.store.models import DistrictRow, Event


@dataclass(frozen=True)
class Period:
    """Bucket starts from ``start`` (inclusive) to ``end`` (exclusive), as of ``now``."""

    start: datetime
    end: datetime
    now: datetime


def _released(policy: CategoryPolicy, bucket: datetime, now: datetime) -> bool:
    """Return whether an event of this bucket has passed its category's publication delay."""
    return bucket + timedelta(seconds=policy.publication_delay_s) <= now


def count_rows(
    session: Session, period: Period, policies: Mapping[str, CategoryPolicy]
) -> list[tuple[str, str, str, datetime, int]]:
    """Return (heat cell, category, perpetrator, bucket start, events) of published events in the period.

    Only published events past their category's publication delay are counted, as in every
    public output.
    """
    rows = session.execute(
        select(Event.heat_cell, Event.category, Event.perpetrator, Event.bucket_start, func.count())
        .where(
            Event.status == Status.PUBLISHED.value,
            Event.bucket_start >= period.start,
            Event.bucket_start < period.end,
            Event.category.in_(list(policies)),
        )
        .group_by(Event.heat_cell, Event.category, Event.perpetrator, Event.bucket_start)
    ).all()
    return [
        (cell, category, perpetrator, bucket, int(n))
        for cell, category, perpetrator, bucket, n in rows
        if _released(policies[category], bucket, period.now)
    ]


def public_events(
    session: Session, period: Period, policies: Mapping[str, CategoryPolicy], perpetrators: frozenset[str]
) -> list[PublicEvent]:
    """Return the published events of the period that the public layers show as single points.

    Categories published only as heat (attacks by default) are left out, whoever asks.
    """
    shown = [name for name, p in policies.items() if p.public_markers]
    if not shown or not perpetrators:
        return []
    rows = session.execute(
        select(*PUBLIC_COLUMNS)
        .where(
            Event.status == Status.PUBLISHED.value,
            Event.bucket_start >= period.start,
            Event.bucket_start < period.end,
            Event.category.in_(shown),
            Event.perpetrator.in_(sorted(perpetrators)),
        )
        .order_by(Event.bucket_start, Event.public_id)
    ).all()
    events = [PublicEvent._make(row) for row in rows]
    return [e for e in events if _released(policies[e.category], e.bucket_start, period.now)]


def replace_districts(session: Session, districts: list[District], hour: datetime) -> None:
    """Replace every stored district by ``districts`` (in the caller's transaction)."""
    session.execute(delete(DistrictRow))
    session.add_all(
        DistrictRow(name=d.name, geojson=json.dumps(mapping(d.geometry)), imported_hour=hour) for d in districts
    )


def load_districts(session: Session) -> list[District]:
    """Return the stored districts, by name."""
    rows = session.execute(select(DistrictRow.name, DistrictRow.geojson).order_by(DistrictRow.name)).all()
    return [District(name, shape(json.loads(text))) for name, text in rows]  # type: ignore[arg-type]
