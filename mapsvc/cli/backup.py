"""``mapsvc backup``, ``mapsvc check-backup`` and ``mapsvc restore``: the store in one file and back.

The work is :mod:`mapsvc.store.backup`'s; these commands only say what was done, in counts.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from mapsvc.core.errors import MapsvcError
from mapsvc.store import get_store
from mapsvc.store.backup import check_backup, restore_backup, write_backup
from mapsvc.store.db import DatabaseUnavailable, as_unavailable

_PATH = click.Path(dir_okay=False, path_type=Path)


@click.command("backup")
@click.argument("path", type=_PATH)
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@with_appcontext
def backup_command(path: Path, force: bool) -> None:
    """Write a consistent backup of the database to PATH while the service runs.

    SQLite: one file made with SQLite's backup API (what the write-ahead log holds included);
    PostGIS: pg_dump's custom format. The file is readable by this user only and takes its
    name only once it is complete and checked.
    """
    try:
        summary = write_backup(get_store(), path, force)
    except (MapsvcError, SQLAlchemyError) as exc:
        raise click.ClickException(_message(exc)) from exc
    click.echo(f"backup written to {path}: {summary.describe()}")


@click.command("check-backup")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def check_backup_command(path: Path) -> None:
    """Open a backup without restoring it: check it, and say its schema revision and counts."""
    try:
        summary = check_backup(path, get_store().url)
    except MapsvcError as exc:
        raise click.ClickException(_message(exc)) from exc
    click.echo(f"{path}: {summary.describe()}")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--force", is_flag=True, help="Replace what the database holds (else only an empty one is restored into)."
)
@with_appcontext
def restore_command(path: Path, force: bool) -> None:
    """Restore a backup made by `mapsvc backup` into the database, then migrate it to this version.

    Stop the service first. The backup is checked before anything is changed; a database that
    holds data is refused unless --force.
    """
    try:
        held, restored = restore_backup(get_store(), path, force)
    except (MapsvcError, SQLAlchemyError) as exc:
        raise click.ClickException(_message(exc)) from exc
    click.echo(f"restored {path}: {held.describe()}")
    if restored.revision != held.revision:
        click.echo(f"migrated to schema revision {restored.revision}")
    click.echo(f"the database now holds {restored.counted()}")


def _message(error: MapsvcError | SQLAlchemyError) -> str:
    """Return what to tell the operator: mapsvc's own message, or what reaching the database failed at."""
    if isinstance(error, MapsvcError):
        return error.message
    unavailable = as_unavailable(error) or DatabaseUnavailable("the database failed to answer")
    return unavailable.message
