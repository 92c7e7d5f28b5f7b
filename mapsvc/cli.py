"""The ``mapsvc`` command line: database, server, demo data and maintenance."""

from __future__ import annotations

import os
from datetime import UTC, timedelta
from typing import Any

import click
import numpy as np
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from mapsvc.demo import generate
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.db import POOL_OVERFLOW, POOL_SIZE, DatabaseUnavailable, Store
from mapsvc.store.events import prune
from mapsvc.store.heat import rebuild_heat
from mapsvc.store.intake_keys import forget_expired
from mapsvc.web import worker_counts
from mapsvc.web.reporting import CheckedReport, check, store_checked

#: Threads of each worker's write lane (mapsvc.lanes): 80 reports a second at 200 ms each (INTAKE_ANSWER_MS).
WRITE_THREADS = 16

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


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Threads for reads.")
@click.option(
    "--write-threads",
    default=WRITE_THREADS,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads for requests that change something (reports first): reads never queue ahead of them.",
)
@click.option(
    "--intake-worker/--no-intake-worker",
    default=None,
    help="One more worker that takes every request that changes something, so that reports never "
    "wait for reads [default: on unless the limits count in each process's memory].",
)
@with_appcontext
def serve(host: str, port: int, workers: int, threads: int, write_threads: int, intake_worker: bool | None) -> None:
    """Run the service with gunicorn; no access log is written.

    Several workers need limit storage they share (RATELIMIT_STORAGE_URI): with "memory://"
    each would count apart, and serve refuses to start. The intake worker is one more.
    """
    from mapsvc.cli_accounts import require_usable_secrets

    intake = not worker_counts.counted_per_worker(current_app.config) if intake_worker is None else intake_worker
    refused = worker_counts.refusal(current_app.config, workers, intake)
    if refused is not None:
        raise click.ClickException(refused)
    require_current_schema()
    require_usable_secrets()
    from gunicorn.app.base import BaseApplication

    from mapsvc.handover import Meeting
    from mapsvc.lanes import lane_worker  # gunicorn's threaded worker takes a tenth of a second to import

    # Flask types current_app as the app it stands for, so mypy does not know the proxy's method.
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    store = get_store()
    allowed = store.connections_allowed()
    most = (workers + intake) * (POOL_SIZE + POOL_OVERFLOW)
    if allowed is not None and allowed < most:
        click.echo(
            f"warning: {workers + intake} workers may open up to {most} PostgreSQL connections at once, and the server "
            f"allows {allowed}: raise max_connections, or serve with fewer --workers",
            err=True,
        )
    # Workers are forked from this process: none may inherit (and so share) its connections.
    store.dispose()

    # Where the workers hand reports to the intake worker (mapsvc.handover): made before they fork.
    meeting = Meeting() if intake else None

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {
                "bind": f"{host}:{port}",
                "workers": workers + intake,
                "threads": threads,
                "accesslog": None,
                "worker_class": lane_worker(write_threads, meeting),  # gthread with a write lane, errors in JSON
                "post_fork": lambda _server, _worker: store.engine.dispose(close=False),
            }.items():
                self.cfg.set(key, value)
            # Recent gunicorn releases open a control socket at one fixed path in the home directory,
            # which a second server on the machine replaces and unlinks; mapsvc does not use it.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Flask:
            return app

    click.echo(f"mapsvc serving on http://{host}:{port}/")
    _Server().run()


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


def init_app(app: Flask) -> None:
    """Register the commands on the app's CLI (``flask --app mapsvc`` works too)."""
    from mapsvc.cli_accounts import accounts_group, admin_group
    from mapsvc.cli_advocacy import advocacy_group, districts_group
    from mapsvc.cli_backup import backup_command, check_backup_command, restore_command
    from mapsvc.cli_import import import_command
    from mapsvc.cli_roads import roads_group
    from mapsvc.cli_tiles import tiles_group

    for command in (db_group, heat_group, serve, demo, prune_command, admin_group, import_command, roads_group):
        app.cli.add_command(command)
    app.cli.add_command(tiles_group)
    app.cli.add_command(districts_group)
    app.cli.add_command(advocacy_group)
    app.cli.add_command(accounts_group)
    for command in (backup_command, check_backup_command, restore_command):
        app.cli.add_command(command)


def _create_app(*_: Any) -> Flask:
    from mapsvc import create_app

    return create_app()


def main() -> None:
    """Entry point of the ``mapsvc`` console script."""
    os.environ.setdefault("FLASK_APP", "mapsvc")
    FlaskGroup(
        create_app=_create_app,
        add_default_commands=False,
        add_version_option=False,
        help="mapsvc: the danger map service.",
    )(prog_name="mapsvc")
