"""Synthetic but realistic reports for demonstrations and benchmarks.

Reports cluster around a few hotspots (market, station, the streets where street-based work
happens), come more often at night, mix categories in plausible shares and spread over a period.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

import numpy as np

from mapsvc.core.area import ServiceArea
from mapsvc.core.geodesy import flat_offset
from mapsvc.core.policy import PERPETRATORS

#: Shares of categories among reports: checkpoints and extortion are the most common.
CATEGORY_SHARES = {
    "checkpoint": 0.30,
    "patrol": 0.12,
    "raid": 0.10,
    "detention": 0.10,
    "extortion": 0.16,
    "attack": 0.08,
    "robbery": 0.08,
    "other": 0.06,
}

#: Relative report rate by local hour: low by day, high late evening and at night.
HOURLY_RATE = np.array([5, 5, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4, 5, 6, 6, 6], dtype=float)

#: Who is named: mostly police, as the organisations' own documentation shows.
PERPETRATOR_SHARES = np.array([0.55, 0.08, 0.14, 0.04, 0.04, 0.05, 0.03, 0.07])


@dataclass(frozen=True)
class DemoReport:
    """A synthetic true report, before any fuzzing."""

    category: str
    lat: float
    lon: float
    occurred_at: datetime
    perpetrator: str

    def as_submission(self) -> dict[str, object]:
        """Return the report as the intake API takes it."""
        return {
            "category": self.category,
            "lat": self.lat,
            "lon": self.lon,
            "occurred_at": self.occurred_at.isoformat(),
            "perpetrator": self.perpetrator,
        }


def hotspots(area: ServiceArea, count: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``count`` hotspot centres (lat, lon) inside the area's middle half."""
    min_lon, min_lat, max_lon, max_lat = area.bounds
    centres: list[tuple[float, float]] = []
    while len(centres) < count:
        lat = rng.uniform(min_lat + (max_lat - min_lat) / 4, max_lat - (max_lat - min_lat) / 4)
        lon = rng.uniform(min_lon + (max_lon - min_lon) / 4, max_lon - (max_lon - min_lon) / 4)
        if area.contains(lat, lon):
            centres.append((lat, lon))
    return np.array(centres)


def generate(
    area: ServiceArea,
    count: int,
    end: datetime,
    span: timedelta,
    rng: np.random.Generator,
    zone: tzinfo = UTC,
    hotspot_count: int = 6,
) -> Iterator[DemoReport]:
    """Yield ``count`` synthetic reports within ``span`` before ``end``, in the area.

    Parameters
    ----------
    area : ServiceArea
        Where the reports fall; points drawn outside it are dropped and drawn again (these
        are synthetic true points, not published ones, so re-drawing leaks nothing).
    count : int
        Number of reports.
    end, span : datetime, timedelta
        Reports fall in ``[end - span, end]``, more of them recent and at night.
    rng : numpy.random.Generator
        Seeded generator, for repeatable demos.
    zone : tzinfo
        The city's time zone, so that "night" is local night.
    hotspot_count : int
        Number of clusters; a fifth of reports are scattered over the whole area.

    """
    centres = hotspots(area, hotspot_count, rng)
    spread_m = rng.uniform(250, 900, size=hotspot_count)
    categories = list(CATEGORY_SHARES)
    shares = np.array(list(CATEGORY_SHARES.values()))
    hour_p = HOURLY_RATE / HOURLY_RATE.sum()
    min_lon, min_lat, max_lon, max_lat = area.bounds
    days = max(span.total_seconds() / 86400, 1 / 24)
    produced = 0
    while produced < count:
        if rng.random() < 0.2:
            lat, lon = rng.uniform(min_lat, max_lat), rng.uniform(min_lon, max_lon)
        else:
            k = rng.integers(hotspot_count)
            dy, dx = rng.normal(0, spread_m[k], size=2)
            lat, lon = flat_offset(centres[k, 0], centres[k, 1], dy, dx)
        if not area.contains(lat, lon):
            continue
        day = rng.exponential(days / 2.5)
        if day >= days:
            continue
        local_hour = rng.choice(24, p=hour_p) + rng.random()
        local_day = (end - timedelta(days=float(day))).astimezone(zone).date()
        midnight = datetime(local_day.year, local_day.month, local_day.day, tzinfo=zone)
        moment = (midnight + timedelta(hours=float(local_hour))).astimezone(UTC)
        if not end - span <= moment <= end:
            continue
        yield DemoReport(
            category=categories[rng.choice(len(categories), p=shares)],
            lat=round(float(lat), 6),
            lon=round(float(lon), 6),
            occurred_at=moment,
            perpetrator=PERPETRATORS[rng.choice(len(PERPETRATORS), p=PERPETRATOR_SHARES)],
        )
        produced += 1
