"""Engine, sessions and migrations. The only place that knows which engine is in use."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CursorResult, Engine, Result, create_engine, event, make_url, select, text, update
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mapsvc.core.errors import MapsvcError
from mapsvc.settings import SQLITE_SYNCHRONOUS_LEVELS
from mapsvc.store.models import StoreVersion
from mapsvc.store.writers import NoLockFile, WritersBusy, WriterTurns

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"

#: How long a SQLite connection waits for a lock (a writer for the one before it), and a checkpoint for readers.
SQLITE_TIMEOUT_S = 30
#: PostgreSQL connections a process keeps, and may open beyond them (mapsvc serve's worker has 4 + 16 threads).
POOL_SIZE = 10
POOL_OVERFLOW = 10
CHECKPOINT_WAIT_MS = 2000


#: Set in a SQLite connection's info while its transaction has deleted rows.
_DELETED = "mapsvc_deleted_rows"

log = logging.getLogger(__name__)


class DatabaseUnavailable(MapsvcError):
    """The database cannot be reached or is too busy to answer; the client may try again."""

    status = 503


#: SQLSTATEs of PostgreSQL for an undefined table and an undefined column.
_SCHEMA_SQLSTATES = {"42P01", "42703"}


def _is_schema_missing(error: BaseException) -> bool:
    """Return whether ``error`` says a table or column of the schema does not exist."""
    if not isinstance(error, OperationalError | ProgrammingError):
        return False
    text = str(error.orig)
    return (
        "no such table" in text
        or "no such column" in text
        or getattr(error.orig, "sqlstate", None) in _SCHEMA_SQLSTATES
    )


def as_unavailable(error: BaseException) -> DatabaseUnavailable | None:
    """Return the 503 error that ``error`` means, or None when it is not about reaching the database.

    The message names the problem only: the driver's text may hold host names or values.
    """
    if isinstance(error, DatabaseUnavailable):
        return error
    if _is_schema_missing(error):
        return DatabaseUnavailable("the database schema is missing or out of date: run `mapsvc db upgrade`")
    if not isinstance(error, OperationalError | InterfaceError):
        return None
    if "locked" in str(error.orig) or "busy" in str(error.orig):
        return DatabaseUnavailable("the database is busy; try again shortly")
    return DatabaseUnavailable("the database is unreachable; try again shortly")


def make_engine(url: str, sqlite_synchronous: str = "FULL") -> Engine:
    """Create the engine for ``url`` with the settings each engine needs.

    Bound parameters are hidden from error messages: they hold published coordinates and
    report text, which have no place in a log. ``sqlite_synchronous`` is SQLite's
    ``PRAGMA synchronous`` level, one of :data:`mapsvc.settings.SQLITE_SYNCHRONOUS_LEVELS`.
    """
    kwargs: dict[str, Any] = {"hide_parameters": True}
    if url.startswith("sqlite"):
        level = str(sqlite_synchronous).upper()
        if level not in SQLITE_SYNCHRONOUS_LEVELS:
            raise ValueError(f"SQLITE_SYNCHRONOUS must be one of {', '.join(SQLITE_SYNCHRONOUS_LEVELS)}")
        kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine, level)
        return engine
    # A connection given back beyond the pool's size is closed, and the next one costs PostgreSQL a new
    # backend process: with SQLAlchemy's 5, the intake worker's 16 threads opened and closed
    # connections all through a raid (bench/load.py: a new backend every few reports). Connections
    # are opened as they are needed: an idle worker keeps few.
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, **kwargs)


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    """Use WAL, foreign keys, and BEGIN IMMEDIATE for writers so concurrent writers queue.

    ``synchronous`` FULL (the default) syncs the write-ahead log at every commit: a report is
    on the disk before it is acknowledged (see docs/deployment.md, "Durability and backups").

    ``secure_delete`` overwrites deleted rows with zeros in their pages, and every transaction
    that deleted rows is marked, so that :meth:`Store.writing` can checkpoint the WAL after it.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.info.pop(_DELETED, None)
        immediate = connection.get_execution_options().get("mapsvc_writer", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @event.listens_for(engine, "after_cursor_execute")
    def _on_execute(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip()[:6].upper() == "DELETE" and cursor.rowcount:
            connection.info[_DELETED] = True


def affected_rows(result: Result[Any]) -> int:
    """Return how many rows the UPDATE or DELETE that gave ``result`` matched.

    ``Session.execute()`` is typed to return a plain ``Result`` for any statement, but for an
    UPDATE or DELETE it is the ``CursorResult`` that holds the count (SQLAlchemy's own
    ``Query.delete()`` casts it the same way).
    """
    return cast(CursorResult[Any], result).rowcount


_NEXT_VERSION = update(StoreVersion).where(StoreVersion.id == 1).values(writes=StoreVersion.writes + 1)
_USERS_CONNECTIONS = text(
    "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
)
_VERSION = select(StoreVersion.writes).where(StoreVersion.id == 1)


def _sqlite_file(url: str) -> Path | None:
    """Return the file of a SQLite URL, or None for a database in memory."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve()


class Store:
    """The database behind one app: an engine and its session factories."""

    def __init__(self, url: str, sqlite_synchronous: str = "FULL") -> None:
        self.url = url
        self.engine = make_engine(url, sqlite_synchronous)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(self.engine.execution_options(mapsvc_writer=True), expire_on_commit=False)
        self._turns = WriterTurns(_sqlite_file(url), SQLITE_TIMEOUT_S) if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        """Return the engine's dialect name ("sqlite" or "postgresql")."""
        return self.engine.dialect.name

    def reader(self) -> Session:
        """Return a session for reads."""
        return self._reader()

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """Yield a session in a write transaction; commit on success, roll back on error.

        Every write transaction also moves the store's version, in the same transaction, so
        that what is cached for the version before it (route plans' street risk) is never used
        again. (Map reads are kept a stated few seconds instead: mapsvc.web.readcache.)

        On SQLite, writers take turns before they begin (:mod:`mapsvc.store.writers`), and a
        transaction that deleted rows (a withdrawal, a prune, a merge) is followed by a
        checkpoint that leaves no old copy of them in the write-ahead log.
        """
        with self._turn():  # the checkpoint too: writers that follow would keep it waiting
            with self._writer() as session, session.begin():
                yield session
                session.execute(_NEXT_VERSION)
                deleted = self.dialect == "sqlite" and session.connection().info.pop(_DELETED, False)
            if deleted:
                self.checkpoint()

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """Wait for this writer's turn on SQLite (nothing to wait for on PostgreSQL)."""
        if self._turns is None:
            yield
            return
        try:
            with self._turns.turn():
                yield
        except WritersBusy:
            raise DatabaseUnavailable("the database is busy; try again shortly") from None
        except NoLockFile:  # the database's directory is gone
            raise DatabaseUnavailable("the database is unreachable; try again shortly") from None

    def connections_allowed(self) -> int | None:
        """Return how many connections the PostgreSQL server allows its users (None on SQLite)."""
        if self.dialect != "postgresql":
            return None
        with self.engine.connect() as connection:
            return int(connection.execute(_USERS_CONNECTIONS).scalar_one())

    def version(self, session: Session) -> int:
        """Return the store's version: the number of write transactions committed so far."""
        return int(session.execute(_VERSION).scalar_one())

    def check(self) -> None:
        """Raise :class:`DatabaseUnavailable` unless the database answers a query now."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise as_unavailable(exc) or DatabaseUnavailable("the database failed to answer") from exc

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` through the Alembic migrations."""
        command.upgrade(alembic_config(self.url), revision)

    def is_current(self) -> bool:
        """Return whether the schema is at the newest migration; raise :class:`DatabaseUnavailable` if unreachable."""
        try:
            with self.engine.connect() as connection:
                current = MigrationContext.configure(connection).get_current_heads()
        except SQLAlchemyError as exc:
            raise as_unavailable(exc) or DatabaseUnavailable("the database failed to answer") from exc
        return set(current) == set(ScriptDirectory.from_config(alembic_config(self.url)).get_heads())

    def checkpoint(self) -> bool:
        """SQLite: copy the write-ahead log into the database file and empty it; return whether it was done.

        With ``secure_delete`` the database file then holds zeros where deleted rows were, and
        the log (whose older frames still hold them) is truncated to nothing. A reader still
        using an older snapshot makes it wait (up to ``CHECKPOINT_WAIT_MS``) or give up, which
        is logged; the next deletion's checkpoint then does it.
        """
        raw = self.engine.raw_connection()
        cursor = raw.cursor()
        try:
            # Other writers wait while this does: wait for readers a little, not the 30 s of a write.
            cursor.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = cursor.fetchone()  # (busy, frames in the log, frames checkpointed)
            busy = row is None or bool(row[0])
        finally:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_TIMEOUT_S * 1000}")
            cursor.close()
            raw.close()
        if busy:
            log.warning(
                "the write-ahead log could not be emptied now: deleted rows stay in it until a later checkpoint"
            )
        return not busy

    def forget_deleted(self, tables: Iterable[str], full: bool = False) -> None:
        """Leave nothing of rows deleted from ``tables`` where a reader of the database's files finds it.

        SQLite (``secure_delete`` zeroes them in their pages): :meth:`checkpoint`; ``full`` first
        rebuilds the whole file with ``VACUUM``, which also clears what was deleted before
        ``secure_delete`` was on. PostgreSQL: ``VACUUM`` each table, outside a transaction,
        which removes dead rows and their index entries and lets their space be reused, but
        leaves their bytes in the pages until written over (measured); ``full`` runs
        ``VACUUM FULL``, which writes each table and its indexes to new files and drops the old
        ones, holding an exclusive lock on the table meanwhile. Neither reaches the server's WAL
        segments not yet recycled, WAL archives or backups.
        """
        if self.dialect == "sqlite":
            if full:
                raw = self.engine.raw_connection()
                try:
                    raw.cursor().execute("VACUUM")  # outside a transaction: the connection autocommits
                finally:
                    raw.close()
            self.checkpoint()
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in tables:
                connection.execute(text(f'VACUUM {"FULL " if full else ""}"{table}"'))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def alembic_config(url: str) -> Config:
    """Return an Alembic configuration for the project's migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config
