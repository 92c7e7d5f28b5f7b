"""Heat series in the database: incremental updates, reads at any moment, and rebuilds."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import h3
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, aliased

from mapsvc.core.decay import DecayedSum, decay_rate, from_epoch, to_epoch
from mapsvc.core.heat import Atom
from mapsvc.core.policy import CategoryPolicy
from mapsvc.store.models import Event, HeatSeries, HeatStep


def _series_for(session: Session, cell: str, policy: CategoryPolicy) -> HeatSeries:
    """Return the series of ``cell`` and the category, creating it when new."""
    series = session.scalars(
        select(HeatSeries).where(HeatSeries.cell == cell, HeatSeries.category == policy.name).with_for_update()
    ).first()
    if series is None:
        lat, lon = h3.cell_to_latlng(cell)
        series = HeatSeries(cell=cell, category=policy.name, half_life_s=policy.half_life_s, lat=lat, lon=lon)
        session.add(series)
        session.flush()
    return series


def change_heat(session: Session, cell: str, bucket: datetime, policy: CategoryPolicy, amount: int) -> None:
    """Add (``amount`` = 1) or remove (-1) one event at ``bucket`` in the cell's series.

    The step of the event's bucket is created from the step before it if needed; that step and
    every later one (a late report lands before them) then take the event's contribution.
    """
    series = _series_for(session, cell, policy)
    rate = decay_rate(series.half_life_s)
    t = to_epoch(bucket)
    steps = select(HeatStep).where(HeatStep.series_id == series.id)
    if session.scalars(steps.where(HeatStep.bucket_start == bucket)).first() is None:
        previous = session.scalars(
            steps.where(HeatStep.bucket_start < bucket).order_by(HeatStep.bucket_start.desc()).limit(1)
        ).first()
        base = DecayedSum.start(t) if previous is None else DecayedSum(previous.landmark_s, previous.decayed_sum)
        moved = base.add(t, rate, 0.0)
        session.add(
            HeatStep(
                series_id=series.id,
                bucket_start=bucket,
                events_total=previous.events_total if previous else 0,
                decayed_sum=moved.s,
                landmark_s=moved.landmark,
            )
        )
        session.flush()
    for step in session.scalars(steps.where(HeatStep.bucket_start >= bucket)):
        added = DecayedSum(step.landmark_s, step.decayed_sum).add(t, rate, float(amount))
        step.decayed_sum = added.s
        step.events_total += amount


@dataclass(frozen=True)
class HeatQuery:
    """What heat to read: a moment, a bounding box and the categories' policies."""

    at: datetime
    bbox: tuple[float, float, float, float]
    policies: Iterable[CategoryPolicy]
    threshold: float
    margin_deg: float = 0.02


def read_atoms(session: Session, query: HeatQuery) -> list[Atom]:
    """Return the atoms of every series in view as they stood at ``query.at``.

    Per category and series: the latest step at or before ``at`` minus the publication delay
    gives the decayed sum; the latest step before the visibility window gives the count of
    events that had already faded, so the difference is the number of live events.
    """
    atoms: list[Atom] = []
    min_lon, min_lat, max_lon, max_lat = query.bbox
    m = query.margin_deg
    for policy in query.policies:
        newest = to_epoch(query.at) - policy.publication_delay_s
        oldest = to_epoch(query.at) - policy.horizon_s(query.threshold)
        if newest < oldest:
            continue
        current = aliased(HeatStep)
        latest_id = (
            select(HeatStep.id)
            .where(HeatStep.series_id == HeatSeries.id, HeatStep.bucket_start <= from_epoch(newest))
            .order_by(HeatStep.bucket_start.desc())
            .limit(1)
            .scalar_subquery()
        )
        faded_total = (
            select(HeatStep.events_total)
            .where(HeatStep.series_id == HeatSeries.id, HeatStep.bucket_start < from_epoch(oldest))
            .order_by(HeatStep.bucket_start.desc())
            .limit(1)
            .scalar_subquery()
        )
        rows = session.execute(
            select(
                HeatSeries.cell,
                HeatSeries.half_life_s,
                current.events_total,
                current.decayed_sum,
                current.landmark_s,
                func.coalesce(faded_total, 0),
            )
            .join(current, current.id == latest_id)
            .where(
                HeatSeries.category == policy.name,
                HeatSeries.lat.between(min_lat - m, max_lat + m),
                HeatSeries.lon.between(min_lon - m, max_lon + m),
            )
        )
        at_s = to_epoch(query.at)
        for cell, half_life_s, total, decayed_sum, landmark_s, faded in rows:
            live = total - faded
            if live <= 0:
                continue
            intensity = DecayedSum(landmark_s, decayed_sum).value_at(at_s, math.log(2) / half_life_s)
            atoms.append(Atom(cell=cell, category=policy.name, intensity=intensity, live_events=live))
    return atoms


def rebuild_heat(session: Session, policies: dict[str, CategoryPolicy], resolution: int) -> int:
    """Recompute every heat series from the events, after a policy or resolution change.

    Returns the number of events counted.
    """
    session.execute(delete(HeatStep))
    session.execute(delete(HeatSeries))
    rows = session.execute(
        select(Event.id, Event.lat, Event.lon, Event.category, Event.bucket_start, Event.heat_cell).order_by(
            Event.bucket_start, Event.id
        )
    ).all()
    moved = []
    for event_id, lat, lon, category, bucket, stored_cell in rows:
        cell = h3.latlng_to_cell(lat, lon, resolution)
        if cell != stored_cell:
            moved.append({"id": event_id, "heat_cell": cell})
        change_heat(session, cell, bucket, policies[category], 1)
    if moved:
        session.execute(update(Event), moved)
    return len(rows)
