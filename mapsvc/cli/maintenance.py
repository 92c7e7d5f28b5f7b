"""``mapsvc db``, ``heat``, ``demo`` and ``prune``: the schema, demo data and maintenance."""

from __future__ import annotations

from datetime import UTC, timedelta

import click
import numpy as np
from flask.cli import with_appcontext

from mapsvc.services.demo import generate
from mapsvc.services.intake import CheckedReport, check, store_checked
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.db import DatabaseUnavailable, Store
from mapsvc.store.events import prune
from mapsvc.store.heat import rebuild_heat
from mapsvc.store.intake_keys import forget_expired

db_group = click.Group("db", help="Database schema.")
heat_group = click.Group("heat", help="Heat aggregates.")


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to reach.")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create or upgrade the schema through the migrations."""
    get_store().upgrade(revision)
    click.echo(f"database at revision {revision}")


def require_current_schema() -> None:
    """Stop with a clear message when the database is unreachable or not brought up to date."""
    try:
        current = get_store().is_current()
    except DatabaseUnavailable as exc:
        raise click.ClickException(exc.message) from exc
    if not current:
        raise click.ClickException("the database schema is missing or out of date: run `mapsvc db upgrade` first")


@heat_group.command("rebuild")
@with_appcontext
def heat_rebuild() -> None:
    """Recompute all heat from the stored events (after changing policies or resolution)."""
    require_current_schema()
    s = settings()
    with get_store().writing() as session:
        counted = rebuild_heat(session, s.policies, s.heat_resolution)
    click.echo(f"heat rebuilt from {counted} events")


@click.command("demo")
@click.option("--reports", default=3000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650))
@click.option("--seed", default=None, type=int, help="Seed for repeatable data (the fuzzing stays random).")
@with_appcontext
def demo(reports: int, days: int, seed: int | None) -> None:
    """Add realistic synthetic reports in the service area (set its city with MAPSVC_SERVICE_AREA)."""
    require_current_schema()
    s = settings()
    made = generate(s.area, reports, s.now(), timedelta(days=days), np.random.default_rng(seed), zone=s.timezone)
    store = get_store()
    merged = 0
    with click.progressbar(length=reports, label="demo reports") as bar:
        batch: list[CheckedReport] = []
        for item in made:
            batch.append(check(item.as_submission(), s))
            if len(batch) == 500:
                merged += _store_batch(store, batch)
                bar.update(len(batch))
                batch = []
        if batch:
            merged += _store_batch(store, batch)
            bar.update(len(batch))
    click.echo(f"{reports} reports added ({merged} merged into existing events)")


def _store_batch(store: Store, batch: list[CheckedReport]) -> int:
    """Store checked reports in one transaction; return how many merged."""
    s = settings()
    merged = 0
    with store.writing() as session:
        for checked in batch:
            merged += store_checked(session, checked, s)[1].merged
    return merged


#: Tables that prune and withdrawals delete from (reports go with their events).
PRUNED_TABLES = ("events", "reports", "heat_steps", "intake_keys")


@click.command("prune")
@click.option(
    "--full",
    is_flag=True,
    help="Rewrite the tables (PostgreSQL: VACUUM FULL, which locks each table while it runs; SQLite: VACUUM).",
)
@with_appcontext
def prune_command(full: bool) -> None:
    """Delete events that have faded from every view and passed the retention period.

    Reports' idempotency keys past their day go too (intake also deletes them as it goes).
    Then vacuum what they, and reports withdrawn since the last prune, left in the database's
    files: SQLite empties its write-ahead log, PostgreSQL runs VACUUM on the tables.
    """
    require_current_schema()
    s = settings()
    store = get_store()
    with store.writing() as session:
        deleted = prune(session, s.policies, s.now(), s.retention, s.threshold)
        keys = forget_expired(session, s.now().astimezone(UTC).date())
    store.forget_deleted(PRUNED_TABLES, full=full)
    click.echo(f"{deleted} events pruned (retention {s.retention.days} days), {keys} expired idempotency keys")
