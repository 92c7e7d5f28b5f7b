"""Database models. The same models serve the embedded SQLite file and PostgreSQL.

What is kept is what privacy.md §4 allows: the published (fuzzed) point, the time bucket, the
category, the perpetrator type, the corroboration count and, only where the organisation turns
it on, free text. Never the true point, the precise time, or anything about the client.
"""

from __future__ import annotations

from datetime import UTC, datetime

from geoalchemy2 import Geometry
from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, literal_column
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime, stored without zone as UTC on every engine."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store aware datetimes as naive UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("datetimes stored by mapsvc must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return stored naive UTC values as aware datetimes."""
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of mapsvc's models."""


class Event(Base):
    """A published event: one fuzzed point, possibly corroborated by several reports."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(24), unique=True)
    category: Mapped[str] = mapped_column(String(32))
    perpetrator: Mapped[str] = mapped_column(String(32))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime)
    heat_cell: Mapped[str] = mapped_column(String(16))
    corroborations: Mapped[int] = mapped_column(Integer, default=1)
    details: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (Index("ix_events_category_bucket_lat_lon", "category", "bucket_start", "lat", "lon"),)


class Report(Base):
    """One report's link to the event it created or corroborated, for withdrawal only."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(24), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    withdrawal_hash: Mapped[str] = mapped_column(String(64))


class HeatSeries(Base):
    """The heat history of one category in one atom cell, with a copy of its latest step."""

    __tablename__ = "heat_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    cell: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    half_life_s: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    # A copy of the latest step, so that reading the heat "now" needs no seek for it.
    last_bucket: Mapped[datetime] = mapped_column(UTCDateTime)
    last_total: Mapped[int] = mapped_column(Integer)
    last_sum: Mapped[float] = mapped_column(Float)
    last_landmark_s: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("cell", "category", name="uq_heat_series_cell_category"),
        Index("ix_heat_series_category_lat_lon", "category", "lat", "lon"),
    )


class HeatStep(Base):
    """Cumulative heat of a series up to and including one time bucket.

    ``events_total`` counts every event up to the bucket; ``decayed_sum`` is the forward-decayed
    sum of those events relative to ``landmark_s`` (epoch seconds). Reading the heat at a moment
    takes the latest step at or before it, and the latest before the visibility window for the
    count of live events: two index seeks per series, however long the history.
    """

    __tablename__ = "heat_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("heat_series.id", ondelete="CASCADE"))
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime)
    events_total: Mapped[int] = mapped_column(Integer)
    decayed_sum: Mapped[float] = mapped_column(Float)
    landmark_s: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("series_id", "bucket_start", name="uq_heat_steps_series_bucket"),
        # Covers the count of faded events read for every series in view, without the table.
        Index("ix_heat_steps_series_bucket_total", "series_id", "bucket_start", "events_total"),
    )


#: PostGIS only (migration 0002): each event's and each heat series' point as
#: ``geometry(Point, 4326)``, generated by the database from lon/lat (so never out of step with
#: them) and GiST-indexed. Not mapped on the models, so SQLite needs no spatial extension;
#: only :mod:`mapsvc.store.spatial` uses them, and only on PostgreSQL.
EVENT_POINT = literal_column("events.geom", Geometry("POINT", 4326))
SERIES_POINT = literal_column("heat_series.geom", Geometry("POINT", 4326))
