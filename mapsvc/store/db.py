"""Engine, sessions and migrations. The only place that knows which engine is in use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CursorResult, Engine, Result, create_engine, event, select, text, update
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mapsvc.errors import MapsvcError
from mapsvc.store.models import StoreVersion

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"


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


def make_engine(url: str) -> Engine:
    """Create the engine for ``url`` with the settings each engine needs.

    Bound parameters are hidden from error messages: they hold published coordinates and
    report text, which have no place in a log.
    """
    kwargs: dict[str, Any] = {"hide_parameters": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    """Use WAL, foreign keys, and BEGIN IMMEDIATE for writers so concurrent writers queue."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("mapsvc_writer", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def affected_rows(result: Result[Any]) -> int:
    """Return how many rows the UPDATE or DELETE that gave ``result`` matched.

    ``Session.execute()`` is typed to return a plain ``Result`` for any statement, but for an
    UPDATE or DELETE it is the ``CursorResult`` that holds the count (SQLAlchemy's own
    ``Query.delete()`` casts it the same way).
    """
    return cast(CursorResult[Any], result).rowcount


_NEXT_VERSION = update(StoreVersion).where(StoreVersion.id == 1).values(writes=StoreVersion.writes + 1)
_VERSION = select(StoreVersion.writes).where(StoreVersion.id == 1)


class Store:
    """The database behind one app: an engine and its session factories."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(self.engine.execution_options(mapsvc_writer=True), expire_on_commit=False)

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
        that answers cached for the version before it are never served again.
        """
        with self._writer() as session, session.begin():
            yield session
            session.execute(_NEXT_VERSION)

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
