"""Storing an import: every row in one transaction, with other writers of events kept out."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from mapsvc.store.spatial import is_postgis


def lock_events_for_import(session: Session) -> None:
    """Keep other writers of events out until the import's transaction ends; reads go on.

    An import takes one EXCLUSIVE lock on ``events`` instead of intake's per-category advisory
    locks (taking those too, after the table lock, could deadlock with an intake that holds one
    and waits for the table). It conflicts with every write and with ``SELECT ...
    FOR UPDATE`` (so intake and moderators wait before they hold any row the import might
    merge into: no deadlock), but not with plain reads: the map goes on. On SQLite the write
    transaction (BEGIN IMMEDIATE) already excludes other writers.
    """
    if is_postgis(session):
        session.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))
