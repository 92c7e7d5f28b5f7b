"""Heat series in the database: incremental updates, reads at any moment, and rebuilds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import h3
from sqlalchemy import String, and_, bindparam, delete, func, insert, literal, select, text, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from mapsvc.core.decay import DecayedSum, decay_rate, decayed_value, to_epoch
from mapsvc.core.heat import Atom
from mapsvc.core.policy import CategoryPolicy
from mapsvc.store.models import SERIES_POINT, Event, HeatSeries, HeatStep, UTCDateTime
from mapsvc.store.spatial import in_bbox, is_postgis

# The intake path runs these for every new event; built once, they skip per-call compilation.
_SERIES = (
    select(HeatSeries.id, HeatSeries.half_life_s)
    .where(HeatSeries.cell == bindparam("cell"), HeatSeries.category == bindparam("category"))
    .with_for_update()
)
# Two writers may create one series at once on PostgreSQL (different buckets, same cell):
# the loser's insert does nothing and both then lock the one row.
_NEW_SERIES = {
    "postgresql": postgresql.insert(HeatSeries).on_conflict_do_nothing(index_elements=["cell", "category"]),
    "sqlite": sqlite.insert(HeatSeries).on_conflict_do_nothing(index_elements=["cell", "category"]),
}
_SNAPSHOT = (
    update(HeatSeries)
    .where(HeatSeries.id == bindparam("series_id"))
    .values(
        last_bucket=bindparam("bucket"),
        last_total=bindparam("total"),
        last_sum=bindparam("s"),
        last_landmark_s=bindparam("landmark"),
    )
)
_ANCHOR = (
    select(func.max(HeatStep.bucket_start))
    .where(HeatStep.series_id == bindparam("series_id"), HeatStep.bucket_start <= bindparam("bucket"))
    .scalar_subquery()
)
_STEPS_FROM_ANCHOR = (
    select(HeatStep.id, HeatStep.bucket_start, HeatStep.events_total, HeatStep.decayed_sum, HeatStep.landmark_s)
    .where(
        HeatStep.series_id == bindparam("series_id"),
        HeatStep.bucket_start >= func.coalesce(_ANCHOR, bindparam("bucket")),
    )
    .order_by(HeatStep.bucket_start)
)
_NEW_STEP = insert(HeatStep).returning(HeatStep.id)
_CHANGE_STEP = (
    update(HeatStep)
    .where(HeatStep.id == bindparam("step_id"))
    .values(events_total=bindparam("total"), decayed_sum=bindparam("s"), landmark_s=bindparam("landmark"))
)


def _series(session: Session, cell: str, bucket: datetime, policy: CategoryPolicy) -> tuple[int, float]:
    """Return (id, half-life) of the series of ``cell`` and the category, locked, creating it if new."""
    connection = session.connection()
    key = {"cell": cell, "category": policy.name}
    row = connection.execute(_SERIES, key).first()
    if row is not None:
        return row.id, row.half_life_s
    lat, lon = h3.cell_to_latlng(cell)
    values = {
        "cell": cell,
        "category": policy.name,
        "half_life_s": policy.half_life_s,
        "lat": lat,
        "lon": lon,
        "last_bucket": bucket,
        "last_total": 0,
        "last_sum": 0.0,
        "last_landmark_s": to_epoch(bucket),
    }
    connection.execute(_NEW_SERIES[connection.dialect.name], values)
    row = connection.execute(_SERIES, key).one()
    return row.id, row.half_life_s


def change_heat(session: Session, cell: str, bucket: datetime, policy: CategoryPolicy, amount: int) -> None:
    """Add (``amount`` = 1) or remove (-1) one event at ``bucket`` in the cell's series.

    The step of the event's bucket is created from the step before it if needed; that step and
    every later one (a late report lands before them) then take the event's contribution, and
    the series' copy of its latest step follows.
    """
    connection = session.connection()
    series_id, half_life_s = _series(session, cell, bucket, policy)
    rate = decay_rate(half_life_s)
    t = to_epoch(bucket)
    rows = connection.execute(_STEPS_FROM_ANCHOR, {"series_id": series_id, "bucket": bucket}).all()
    steps = [
        {
            "step_id": r.id,
            "bucket": r.bucket_start,
            "total": r.events_total,
            "s": r.decayed_sum,
            "landmark": r.landmark_s,
        }
        for r in rows
    ]
    if not steps or steps[0]["bucket"] != bucket:
        previous = steps.pop(0) if steps and steps[0]["bucket"] < bucket else None
        base = DecayedSum.start(t) if previous is None else DecayedSum(previous["landmark"], previous["s"])
        moved = base.add(t, rate, 0.0)
        total = previous["total"] if previous is not None else 0
        new = {"bucket": bucket, "total": total, "s": moved.s, "landmark": moved.landmark}
        new["step_id"] = connection.execute(
            _NEW_STEP,
            {
                "series_id": series_id,
                "bucket_start": bucket,
                "events_total": total,
                "decayed_sum": moved.s,
                "landmark_s": moved.landmark,
            },
        ).scalar_one()
        steps.insert(0, new)
    for step in steps:
        added = DecayedSum(step["landmark"], step["s"]).add(t, rate, float(amount))
        step.update(total=step["total"] + amount, s=added.s, landmark=added.landmark)
    connection.execute(_CHANGE_STEP, steps)
    connection.execute(_SNAPSHOT, {**steps[-1], "series_id": series_id})


@dataclass(frozen=True)
class HeatQuery:
    """What heat to read: a moment, a bounding box and the categories' policies."""

    at: datetime
    bbox: tuple[float, float, float, float]
    policies: Iterable[CategoryPolicy]
    threshold: float
    margin_deg: float = 0.02


def _windows(query: HeatQuery) -> Any:
    """Return a table of (category, oldest, newest): each category's visible buckets.

    Built from one-row selects of bound values (a VALUES clause cannot be cached by
    SQLAlchemy, and compiling the statement afresh cost more than running it).
    """
    rows = []
    for policy in query.policies:
        window = policy.visible_buckets(query.at, query.threshold)
        if window is not None:
            oldest, newest = window
            rows.append(
                select(
                    literal(policy.name, String()).label("category"),
                    literal(oldest, UTCDateTime()).label("oldest"),
                    literal(newest, UTCDateTime()).label("newest"),
                )
            )
    if not rows:
        return None
    return (union_all(*rows) if len(rows) > 1 else rows[0]).cte("windows")


def _atom_rows(session: Session, query: HeatQuery) -> list[Any]:
    """Return (cell, category, half-life, total, sum, landmark, faded total) per series in view.

    One statement for all categories: a series whose latest step is not after the moment
    read is answered from its copy of that step; only series changed after the moment (a
    past ``at``) need a second statement with a seek for the step.
    """
    windows = _windows(query)
    if windows is None:
        return []
    faded_step = aliased(HeatStep)
    faded = func.coalesce(
        select(faded_step.events_total)
        .where(faded_step.series_id == HeatSeries.id, faded_step.bucket_start < windows.c.oldest)
        .order_by(faded_step.bucket_start.desc())
        .limit(1)
        .scalar_subquery(),
        0,
    )
    min_lon, min_lat, max_lon, max_lat = query.bbox
    m = query.margin_deg
    view = (min_lon - m, min_lat - m, max_lon + m, max_lat + m)
    in_view = and_(
        in_bbox(session, HeatSeries.lat, HeatSeries.lon, SERIES_POINT, view),
        HeatSeries.last_bucket >= windows.c.oldest,
    )
    series = (HeatSeries.cell, HeatSeries.category, HeatSeries.half_life_s)
    current = (
        select(*series, HeatSeries.last_total, HeatSeries.last_sum, HeatSeries.last_landmark_s, faded)
        .join(windows, HeatSeries.category == windows.c.category)
        .where(in_view, HeatSeries.last_bucket <= windows.c.newest)
    )
    step = aliased(HeatStep)
    latest_step_id = (
        select(HeatStep.id)
        .where(HeatStep.series_id == HeatSeries.id, HeatStep.bucket_start <= windows.c.newest)
        .order_by(HeatStep.bucket_start.desc())
        .limit(1)
        .scalar_subquery()
    )
    past = (
        select(*series, step.events_total, step.decayed_sum, step.landmark_s, faded)
        .join(windows, HeatSeries.category == windows.c.category)
        .join(step, step.id == latest_step_id)
        .where(in_view, HeatSeries.last_bucket > windows.c.newest)
    )
    connection = session.connection()  # plain rows: no ORM loading for thousands of tuples
    rows = list(connection.execute(current).all())  # one fetchall: row-by-row fetching cost more than the query
    # Reading "now", no series has changed since: the second scan can be skipped.
    earliest = query.at - timedelta(seconds=max(p.publication_delay_s for p in query.policies))
    if connection.execute(select(HeatSeries.id).where(HeatSeries.last_bucket > earliest).limit(1)).first():
        rows.extend(connection.execute(past).all())
    return rows


def read_atoms(session: Session, query: HeatQuery) -> list[Atom]:
    """Return the atoms of every series in view as they stood at ``query.at``.

    Per category and series: the latest step at or before ``at`` minus the publication delay
    gives the decayed sum; the latest step before the visibility window gives the count of
    events that had already faded, so the difference is the number of live events.

    The decay is the core's (:func:`~mapsvc.core.decay.decayed_value` at the rate
    :func:`~mapsvc.core.decay.decay_rate` of the series' half-life), evaluated here in Python on
    the stored columns: the database only selects the rows.
    """
    at_s = to_epoch(query.at)
    return [
        Atom(cell, category, decayed_value(decayed_sum, landmark_s, at_s, decay_rate(half_life_s)), total - faded)
        for cell, category, half_life_s, total, decayed_sum, landmark_s, faded in _atom_rows(session, query)
        if total > faded
    ]


def rebuild_heat(session: Session, policies: dict[str, CategoryPolicy], resolution: int) -> int:
    """Recompute every heat series from the published events, after a policy or resolution change.

    Returns the number of events counted. On PostgreSQL, intake waits until the rebuild commits.
    """
    if is_postgis(session):
        session.execute(text("LOCK TABLE events IN SHARE MODE"))
    session.execute(delete(HeatStep))
    session.execute(delete(HeatSeries))
    rows = session.execute(
        select(
            Event.id, Event.lat, Event.lon, Event.category, Event.bucket_start, Event.heat_cell, Event.status
        ).order_by(Event.bucket_start, Event.id)
    ).all()
    moved = []
    counted = 0
    for event_id, lat, lon, category, bucket, stored_cell, status in rows:
        cell = h3.latlng_to_cell(lat, lon, resolution)
        if cell != stored_cell:
            moved.append({"id": event_id, "heat_cell": cell})  # pending ones too, for when they are approved
        if status == "published":  # only published events are heat
            change_heat(session, cell, bucket, policies[category], 1)
            counted += 1
    if moved:
        session.execute(update(Event), moved)
    return counted
