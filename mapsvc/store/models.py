"""Database models. The same models serve the embedded SQLite file and PostgreSQL.

What is kept is what privacy.md §4 allows: the published (fuzzed) point, the time bucket, the
category, the perpetrator type, the corroboration count and, only where the organisation turns
it on, free text. Never the true point, the precise time, or anything about the client.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    literal_column,
    text,
)
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
    #: ``published`` (in layers and heat), ``pending`` (waits for a moderator) or ``rejected``.
    status: Mapped[str] = mapped_column(String(16), default="published", server_default="published")
    #: ``unverified``, ``corroborated`` (independent reports merged) or ``verified``.
    trust: Mapped[str] = mapped_column(String(16), default="unverified", server_default="unverified")
    #: Why a pending event waits: ``premoderation`` (its category's choice) or ``burst``.
    held_reason: Mapped[str | None] = mapped_column(String(16), default=None)
    #: A moderator marked the event verified (kept apart from trusted reports, which may be withdrawn).
    verified_by_staff: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: The server drew this point's noise (from an exact point): later reports of a place within the
    #: category's reuse distance publish this point again. Points sent already fuzzed never are.
    server_drawn: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        # Covers layer reads of published events; see migration 0003.
        Index("ix_events_category_bucket_lat_lon_status", "category", "bucket_start", "lat", "lon", "status"),
        # Finds the points the server drew near a place, without reading the table (migration 0008).
        Index(
            "ix_events_drawn_points",
            "category",
            "lat",
            "lon",
            "id",
            "status",
            "server_drawn",  # in the index too, or SQLite reads the table for it
            sqlite_where=text("server_drawn = 1"),
            postgresql_where=text("server_drawn"),
        ),
        Index(
            "ix_events_pending",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )


class Report(Base):
    """One report's link to the event it created or corroborated, for withdrawal only."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(24), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    withdrawal_hash: Mapped[str] = mapped_column(String(64))
    #: Sent by a signed-in trusted peer (or staff): counts as verified.
    trusted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class AuditEntry(Base):
    """One staff action: who (username), what, on which event, to the hour. Nothing on reporters."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at_hour: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(32))
    event_public_id: Mapped[str | None] = mapped_column(String(24), default=None)
    detail: Mapped[str | None] = mapped_column(String(200), default=None)


class Account(Base):
    """A pseudonymous staff or peer account, made from an invitation: no e-mail, no phone."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    #: Sealed with TOTP_ENCRYPTION_KEY and bound to this account (mapsvc.store.totp), never plain.
    totp_secret: Mapped[str | None] = mapped_column(String(255), default=None)
    #: The last TOTP time step accepted, so that a code cannot be used twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Wrong codes since the last right one (wrong passwords are counted apart, per source).
    totp_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Codes are not checked before this moment, after too many wrong ones.
    totp_wait_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_hour: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Times every browser was forgotten ("sign out everywhere"): with the password's hash, part of
    #: the device cookies' entries (mapsvc.web.auth.devices), so that changing either voids them all.
    browsers_forgotten: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Invitation(Base):
    """An invitation code (stored hashed) for one account of one role, until it expires."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_hour: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), default=None)
    used_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), default=None)


class LoginSession(Base):
    """A signed-in browser: the cookie's token is stored hashed; deleting rows logs out."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    second_factor_done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Until when the session counts as freshly signed in (password, and code if set): security
    #: changes need that, so a session left open on a lost phone cannot make them.
    fresh_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ApiToken(Base):
    """A revocable token for an integration, scoped to a role no higher than its owner's."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    created_hour: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


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


class DistrictRow(Base):
    """An administrative district for advocacy counts: its name and polygon as GeoJSON (EPSG:4326).

    Kept as GeoJSON text on every engine (a few hundred polygons, read whole): SQLite needs no
    spatial extension, and shapely does the little geometry advocacy needs.
    """

    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    geojson: Mapped[str] = mapped_column(Text)
    imported_hour: Mapped[datetime] = mapped_column(UTCDateTime)


class RoadNetwork(Base):
    """The street network imported for one mode (``walk`` or ``drive``) from an OSM extract."""

    __tablename__ = "road_networks"

    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[str] = mapped_column(String(8), unique=True)
    #: The extract's file name (no directory), for ``mapsvc roads show``.
    source: Mapped[str] = mapped_column(String(255))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    node_count: Mapped[int] = mapped_column(Integer)
    edge_count: Mapped[int] = mapped_column(Integer)


class RoadNode(Base):
    """A street node (OSM node) of a network, numbered from 0."""

    __tablename__ = "road_nodes"

    network_id: Mapped[int] = mapped_column(ForeignKey("road_networks.id", ondelete="CASCADE"), primary_key=True)
    node: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)


class RoadEdge(Base):
    """A street segment between two consecutive nodes of an OSM way, with its length in metres."""

    __tablename__ = "road_edges"

    network_id: Mapped[int] = mapped_column(ForeignKey("road_networks.id", ondelete="CASCADE"), primary_key=True)
    edge: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    u: Mapped[int] = mapped_column(Integer)
    v: Mapped[int] = mapped_column(Integer)
    length_m: Mapped[float] = mapped_column(Float)
    #: False for a one-way street of a drivable network (usable from u to v only).
    two_way: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str | None] = mapped_column(String(255), default=None)
    highway: Mapped[str] = mapped_column(String(40))


class IntakeKey(Base):
    """A report's idempotency key, kept while a resend may come, so that a resend is answered, not stored again.

    Only a hash of the key, the receipt (report id and withdrawal code) sealed with a key derived
    from the idempotency key, which only the sender holds (:mod:`mapsvc.store.intake_keys`), and
    the day the row expires. Without the key, nothing here leads to a report.
    """

    __tablename__ = "intake_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed_receipt: Mapped[str] = mapped_column(String(255))
    expires_on: Mapped[date] = mapped_column(Date, index=True)


class StoreVersion(Base):
    """One row counting committed writes: cached answers to reads hold until it moves."""

    __tablename__ = "store_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    writes: Mapped[int] = mapped_column(BigInteger)


#: PostGIS only (migration 0002): each event's and each heat series' point as
#: ``geometry(Point, 4326)``, generated by the database from lon/lat (so never out of step with
#: them) and GiST-indexed. Not mapped on the models, so SQLite needs no spatial extension;
#: only :mod:`mapsvc.store.spatial` uses them, and only on PostgreSQL.
EVENT_POINT = literal_column("events.geom", Geometry("POINT", 4326))
SERIES_POINT = literal_column("heat_series.geom", Geometry("POINT", 4326))
