"""Backups of the store: an online, consistent copy in one file; its check; its restore.

SQLite: the sqlite3 backup API copies the database as one read transaction sees it, the pages
still in the write-ahead log included, while writers go on (a copy of the file alone misses
what the log holds). The copy is a single file in rollback-journal mode, checked with
``PRAGMA integrity_check`` before it takes its name. PostGIS: ``pg_dump -Fc`` and a restore that
leaves out what the postgis extension owns (:mod:`mapsvc.store.pgdump`).

A backup is written to a temporary file (mode 0600) beside its path and renamed there only
once it is complete and checked, so a path never holds half a backup; an existing file is
replaced only when asked. A backup holds what the database holds, nothing more: fuzzed points,
coarse times, counts, hashes. Messages name counts and the schema's revision, nothing stored.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from mapsvc.core.errors import MapsvcError
from mapsvc.store import pgdump
from mapsvc.store.db import Store, alembic_config

#: The tables a summary counts (those the revision has), in this order, and what it calls their rows.
COUNTED = {
    "events": "events",
    "reports": "reports",
    "heat_series": "heat series",
    "heat_steps": "heat steps",
    "accounts": "accounts",
    "audit_log": "audit entries",
    "districts": "districts",
    "road_networks": "road networks",
}
#: Tables that hold no data of their own: a store with rows only in these is empty.
BOOKKEEPING = ("alembic_version", "store_version")

#: The first bytes of each kind of backup file.
SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


class BackupError(MapsvcError):
    """A backup cannot be written, read or restored; the message says why and what to do."""


@dataclass(frozen=True)
class BackupSummary:
    """What a backup (or a restored store) holds: its engine, schema revision and row counts."""

    engine: str
    revision: str
    counts: Mapping[str, int]

    def counted(self) -> str:
        """Return the counts as words, e.g. "12 events, 30 reports"."""
        return ", ".join(f"{n} {COUNTED.get(table, table)}" for table, n in self.counts.items()) or "no tables"

    def describe(self) -> str:
        """Return one line naming the engine, the revision and the counts (nothing stored)."""
        return f"{self.engine}, schema revision {self.revision}: {self.counted()}"


def backup_kind(path: Path) -> str:
    """Return "sqlite" or "postgresql" from the file's first bytes; raise BackupError for anything else."""
    try:
        with path.open("rb") as file:
            head = file.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from exc
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is neither a SQLite backup nor a pg_dump custom-format file")


def check_revision(revision: str | None, url: str) -> None:
    """Raise BackupError unless ``revision`` is one of this version's migrations."""
    if not revision:
        raise BackupError("the backup has no schema revision (alembic_version): it is no mapsvc database")
    script = ScriptDirectory.from_config(alembic_config(url))
    known = revision in {migration.revision for migration in script.walk_revisions()}
    if not known:
        raise BackupError(
            f"the backup is at schema revision {revision}, which this version of mapsvc does not know "
            "(made by a newer version?): restore it with that version"
        )


def write_backup(store: Store, path: Path, force: bool = False) -> BackupSummary:
    """Write an online, consistent backup of ``store`` to ``path``; return what it holds.

    Refuses an existing ``path`` unless ``force``. The backup is checked before it is named.
    """
    with _new_file(path, force) as part:
        if store.dialect == "sqlite":
            _copy_sqlite(store, part)
            summary = check_backup(part, store.url)
        else:
            with part.open("wb") as out:
                pgdump.dump(store.url, out)
            summary = check_backup(part, store.url)
    return summary


def check_backup(path: Path, url: str) -> BackupSummary:
    """Open a backup without restoring it: check it and return its revision and counts."""
    kind = backup_kind(path)
    if kind == "sqlite":
        revision, counts = _inspect_sqlite(path)
    else:
        revision, counted = pgdump.inspect(path)
        counts = {table: counted[table] for table in COUNTED if table in counted}
    check_revision(revision, url)
    return BackupSummary(kind, str(revision), counts)


def restore_backup(store: Store, path: Path, force: bool = False) -> tuple[BackupSummary, BackupSummary]:
    """Restore ``path`` into ``store``, then migrate it to the newest revision.

    Refuses a store that holds data unless ``force`` (its data is then replaced). Returns what
    the backup held and what the store holds afterwards.
    """
    held = check_backup(path, store.url)
    if held.engine != store.dialect:
        raise BackupError(f"a {held.engine} backup cannot be restored into a {store.dialect} database")
    if not force and not is_empty(store):
        raise BackupError(
            "the database already holds data: restore into an empty one, or add --force to replace what it holds"
        )
    if store.dialect == "sqlite":
        _restore_sqlite(store, path)
    else:
        store.dispose()  # the restore drops the tables: no connection of ours may hold them
        pgdump.restore(store.url, path)
    store.upgrade()
    return held, summarise(store)


def is_empty(store: Store) -> bool:
    """Return whether no table of the store (other than its bookkeeping) holds a row."""
    with store.engine.connect() as connection:
        tables = [t for t in inspect(connection).get_table_names() if t not in BOOKKEEPING]
        if store.dialect == "postgresql":
            tables = [t for t in tables if t not in pgdump.EXTENSION_TABLES]
        return not any(connection.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{t}")')).scalar() for t in tables)


def summarise(store: Store) -> BackupSummary:
    """Return the store's revision and counts, as a backup's summary reads."""
    with store.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        counts = {
            t: int(connection.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()) for t in COUNTED if t in tables
        }
    return BackupSummary(store.dialect, str(revision), counts)


@contextmanager
def _new_file(path: Path, force: bool) -> Iterator[Path]:
    """Yield a new empty file (mode 0600) beside ``path``; move it to ``path`` once the block succeeds."""
    path = path.absolute()
    if path.is_dir():
        raise BackupError(f"{path} is a folder: give the backup file's name")
    if path.exists() and not force:
        raise BackupError(f"{path} exists: choose another name, or add --force to replace it")
    if not path.parent.is_dir():
        raise BackupError(f"the folder {path.parent} does not exist")
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        os.close(os.open(part, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise BackupError(f"cannot write in {path.parent}: {exc.strerror}") from exc
    try:
        yield part
        _sync(part)
        _put_in_place(part, path, force)
        _sync(path.parent)
    finally:
        part.unlink(missing_ok=True)


def _put_in_place(part: Path, path: Path, force: bool) -> None:
    """Give ``part`` the name ``path`` in one step; without ``force``, never over an existing file."""
    if force:
        os.replace(part, path)
        return
    try:
        os.link(part, path)  # fails if the name was taken meanwhile, unlike a rename
    except FileExistsError as exc:
        raise BackupError(f"{path} exists: choose another name, or add --force to replace it") from exc
    except OSError:  # a file system without hard links
        if path.exists():
            raise BackupError(f"{path} exists: choose another name, or add --force to replace it") from None
        os.replace(part, path)


def _sync(path: Path) -> None:
    """Flush a file's or a folder's contents to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _copy_sqlite(store: Store, target: Path) -> None:
    """Copy the live database (write-ahead log included) into ``target`` as one snapshot.

    One backup step copies every page inside one read transaction: in WAL mode writers go on
    meanwhile and the copy is the database as of the step's start. The copy is left in
    rollback-journal mode, one self-contained file.
    """
    raw = store.engine.raw_connection()
    try:
        with closing(sqlite3.connect(target, isolation_level=None)) as copy:
            raw.driver_connection.backup(copy, pages=-1)  # type: ignore[union-attr]
            copy.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise BackupError(f"the backup failed: {exc}") from exc
    finally:
        raw.close()


def _open_sqlite_backup(path: Path) -> sqlite3.Connection:
    """Open a SQLite backup read-only (nothing is written to it or beside it)."""
    try:
        return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {path} as a SQLite database: {exc}") from exc


def _inspect_sqlite(path: Path) -> tuple[str | None, dict[str, int]]:
    """Check a SQLite backup's integrity and foreign keys; return its revision and counts."""
    with closing(_open_sqlite_backup(path)) as backup:
        try:
            problems = [row[0] for row in backup.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(f"{path} is damaged (integrity check: {problems[0]})")
            if backup.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise BackupError(f"{path} is damaged: rows refer to rows it does not hold")
            tables = {row[0] for row in backup.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "alembic_version" not in tables:
                return None, {}
            revision = backup.execute("SELECT version_num FROM alembic_version").fetchone()
            counts = {
                t: int(backup.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in COUNTED if t in tables
            }
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path} is not a readable SQLite database: {exc}") from exc
    return (revision[0] if revision else None), counts


def _restore_sqlite(store: Store, path: Path) -> None:
    """Copy a backup over the store's database through SQLite (its locks and log), then checkpoint."""
    raw = store.engine.raw_connection()
    try:
        with closing(_open_sqlite_backup(path)) as backup:
            backup.backup(raw.driver_connection, pages=-1)  # type: ignore[arg-type]
    except sqlite3.Error as exc:
        raise BackupError(f"the restore failed: {exc}") from exc
    finally:
        raw.close()
    store.checkpoint()
