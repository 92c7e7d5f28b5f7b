"""PostGIS: a GiST-indexed geometry(Point, 4326) for events and heat series (PostgreSQL only).

Each point is a STORED generated column computed by the database from lon/lat, so it can
never disagree with them and the application never writes it; SQLite (no SpatiaLite) keeps
plain lat/lon and this revision does nothing there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: (table, index) pairs that get the generated point.
POINT_TABLES = (("events", "ix_events_geom"), ("heat_series", "ix_heat_series_geom"))

_NOT_AVAILABLE = (
    "PostGIS is not installed on this PostgreSQL server: install the package for its version "
    "(Debian: postgresql-<version>-postgis-3)"
)
_NOT_ALLOWED = "the postgis extension is missing and this role may not create it: as a superuser run {sql}"


def _ensure_postgis() -> None:
    """Create the postgis extension if it is missing and this role may; else say who must."""
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).first():
        return
    if not bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")).first():
        raise RuntimeError(_NOT_AVAILABLE)
    sql = "CREATE EXTENSION IF NOT EXISTS postgis"
    try:
        with bind.begin_nested():
            bind.execute(sa.text(sql))
    except sa.exc.DBAPIError as exc:
        raise RuntimeError(_NOT_ALLOWED.format(sql=f"{sql}; in database {bind.engine.url.database}")) from exc


def upgrade() -> None:
    """On PostgreSQL, add each table's point generated from lon/lat and its GiST index."""
    if op.get_bind().dialect.name != "postgresql":
        return
    _ensure_postgis()
    for table, index in POINT_TABLES:
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN geom geometry(Point, 4326) "
            "GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED"
        )
        op.create_index(index, table, ["geom"], postgresql_using="gist")


def downgrade() -> None:
    """Drop the points and their indexes (the extension stays: others may use it)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, index in POINT_TABLES:
        op.drop_index(index, table)
        op.drop_column(table, "geom")
