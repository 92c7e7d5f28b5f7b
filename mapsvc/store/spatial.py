"""Bounding-box filters: on PostGIS through the GiST index, exact on every engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func
from sqlalchemy.orm import Session


def is_postgis(session: Session) -> bool:
    """Return whether the session's database is PostgreSQL (with PostGIS, migration 0002)."""
    return session.get_bind().dialect.name == "postgresql"


def in_bbox_exactly(lat: Any, lon: Any, bbox: tuple[float, float, float, float]) -> ColumnElement[bool]:
    """Return "(lat, lon) lies in ``bbox``" as plain comparisons, edges included, on every engine.

    For reads that an index on (..., lat, lon, ...) answers alone: the GiST condition of
    :func:`in_bbox` would make PostgreSQL visit every row to test its geometry.
    """
    min_lon, min_lat, max_lon, max_lat = bbox
    return and_(lat.between(min_lat, max_lat), lon.between(min_lon, max_lon))


def in_bbox(
    session: Session, lat: Any, lon: Any, point: ColumnElement[Any], bbox: tuple[float, float, float, float]
) -> ColumnElement[bool]:
    """Return the condition "(lat, lon) lies in ``bbox``" (min lon, min lat, max lon, max lat), edges included.

    On PostGIS, ``point && envelope`` lets the planner use the GiST index; the index keeps
    boxes in single precision rounded outwards, so it finds a superset, and the exact
    comparison of lat and lon that follows (the only test on SQLite) makes both engines
    answer the same rows.
    """
    exact = in_bbox_exactly(lat, lon, bbox)
    if not is_postgis(session):
        return exact
    min_lon, min_lat, max_lon, max_lat = bbox
    envelope = func.ST_MakeEnvelope(min_lon, min_lat, max_lon, max_lat, 4326)
    return and_(point.op("&&")(envelope), exact)
