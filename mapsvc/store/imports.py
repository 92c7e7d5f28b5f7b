"""Storing an import: every row in one transaction, with other writers of events kept out."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from mapsvc.core.policy import CategoryPolicy
from mapsvc.store.events import PublishedReport, Receipt, Standing, record_report
from mapsvc.store.spatial import is_postgis


def lock_events_for_import(session: Session) -> None:
    """Keep other writers of events out until the import's transaction ends; reads go on.

    Intake's per-(category, bucket) advisory locks would pile up in one long transaction (a
    year of hourly buckets exceeds PostgreSQL's default lock table), so an import takes one
    EXCLUSIVE lock on ``events`` instead. It conflicts with every write and with ``SELECT ...
    FOR UPDATE`` (so intake and moderators wait before they hold any row the import might
    merge into: no deadlock), but not with plain reads: the map goes on. On SQLite the write
    transaction (BEGIN IMMEDIATE) already excludes other writers.
    """
    if is_postgis(session):
        session.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))


def store_imported(
    session: Session, report: PublishedReport, policy: CategoryPolicy, level: float, resolution: int, standing: Standing
) -> Receipt:
    """Store one imported report by the usual merge rules, under the import's table lock."""
    return record_report(session, report, policy, level, resolution, standing, group_locked=True)
