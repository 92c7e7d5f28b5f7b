"""Migrated test databases on each engine: SQLite files and PostGIS databases.

SQLite: a migrated template file per session, copied for every test.

PostGIS: a migrated template database per worker process, made from the base database that
``scripts/postgis.sh`` creates (it holds the postgis extension, which only a superuser may
create). Whole databases are copied from it with ``CREATE DATABASE ... TEMPLATE`` where a test
needs one of its own; for the many ordinary tests, one scratch copy per worker is emptied with
``TRUNCATE ... RESTART IDENTITY`` before each test, which leaves it exactly as a new copy
(measured here: a copy and a drop take about 1.4 s together, mostly the checkpoint that DROP
DATABASE forces; an emptying takes milliseconds). Names carry the worker's process id, so
xdist workers and parallel runs never meet, and databases left by dead runs are dropped.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text

from mapsvc.store.db import Store

ENGINES = ("sqlite", "postgis")

#: Where the tests find PostgreSQL: the role and base database that scripts/postgis.sh creates.
DEFAULT_POSTGRES_URL = "postgresql+psycopg://mapsvc_test@127.0.0.1:5432/mapsvc_test"

#: Every table of the schema, emptied between tests (accounts and the audit log too).
TABLES = (
    "events",
    "reports",
    "heat_series",
    "heat_steps",
    "audit_log",
    "accounts",
    "invitations",
    "login_sessions",
    "api_tokens",
    "districts",
    "intake_keys",
    "road_networks",
    "road_nodes",
    "road_edges",
)
#: Tables a new copy holds rows of, which emptying would break: the store's write count (one row).
KEPT_TABLES = ("store_version", "alembic_version")


class SqliteDatabases:
    """Migrated SQLite files: one template, a copy per test or fixture."""

    engine = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.template = directory / "template.sqlite3"
        store = Store(self.url(self.template))
        store.upgrade()
        store.dispose()

    @staticmethod
    def url(path: Path) -> str:
        """Return the SQLAlchemy URL of a file."""
        return f"sqlite:///{path}"

    def fresh(self, directory: Path) -> str:
        """Return the URL of a new migrated database of its own."""
        path = directory / "mapsvc.sqlite3"
        shutil.copy(self.template, path)
        return self.url(path)

    def per_test(self, directory: Path) -> str:
        """Return the URL of an empty migrated database for one test."""
        return self.fresh(directory)

    def empty(self, directory: Path) -> str:
        """Return the URL of a database with no schema at all."""
        return self.url(directory / "empty.sqlite3")

    def dump(self, url: str) -> str:
        """Return everything the database holds as SQL text (what a seized file reveals)."""
        with sqlite3.connect(make_url(url).database or "") as connection:
            return "\n".join(connection.iterdump())

    def drop(self, url: str) -> None:
        """Delete a database file made by :meth:`fresh` or :meth:`empty`."""
        Path(make_url(url).database or "").unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing to do: the files live in pytest's temporary folders."""


class PostgisDatabases:
    """Migrated PostGIS databases: a template per worker, copies, and a scratch database."""

    engine = "postgis"

    def __init__(self, base_url: str) -> None:
        self.base = make_url(base_url)
        self.prefix = f"mapsvc_t{os.getpid()}_"
        self._names = itertools.count()
        self._made: list[str] = []
        self.admin = self._admin_engine()
        self._drop_orphans()
        self.template = self._create(self.prefix + "template", str(self.base.database))
        store = Store(self.url(self.template))
        store.upgrade()
        store.dispose()
        self.scratch = self._create(self.prefix + "scratch", self.template)
        self._scratch_engine = create_engine(self.url(self.scratch), pool_size=1)

    def _admin_engine(self) -> Engine:
        """Return an autocommit engine on the maintenance database, with a clear error if unreachable."""
        engine = create_engine(self.base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            raise RuntimeError(
                f"PostgreSQL is not reachable as {self.base.username}@{self.base.host}: run `bash scripts/postgis.sh` "
                "(or scripts/test.sh), set MAPSVC_TEST_POSTGRES_URL, or run the SQLite half with --engine sqlite"
            ) from exc
        return engine

    def _drop_orphans(self) -> None:
        """Drop test databases whose run has ended without cleaning up (killed, crashed)."""
        with self.admin.connect() as connection:
            names = connection.execute(text(r"SELECT datname FROM pg_database WHERE datname LIKE 'mapsvc\_t%\_%'"))
            for (name,) in names.all():
                match = re.fullmatch(r"mapsvc_t(\d+)_\w+", name)
                if match and not _alive(int(match.group(1))):
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def _create(self, name: str, template: str) -> str:
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        self._made.append(name)
        return name

    def url(self, name: str) -> str:
        """Return the SQLAlchemy URL of a database (password included, if any)."""
        return self.base.set(database=name).render_as_string(hide_password=False)

    def fresh(self, directory: Path) -> str:
        """Return the URL of a new migrated database of its own (dropped at the end of the session)."""
        return self.url(self._create(f"{self.prefix}{next(self._names)}", self.template))

    def per_test(self, directory: Path) -> str:
        """Return the URL of the worker's scratch database, emptied as a new copy would be."""
        with self._scratch_engine.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        return self.url(self.scratch)

    def empty(self, directory: Path) -> str:
        """Return the URL of a database with the postgis extension and no schema of mapsvc's."""
        return self.url(self._create(f"{self.prefix}{next(self._names)}", str(self.base.database)))

    def dump(self, url: str) -> str:
        """Return ``pg_dump --inserts`` of the database: what a seized server or backup reveals."""
        libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        done = subprocess.run(["pg_dump", "--inserts", "--no-owner", libpq], capture_output=True, text=True, check=True)
        return done.stdout

    def drop(self, url: str) -> None:
        """Drop one database made by :meth:`fresh` or :meth:`empty`, whoever is still connected."""
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self._made:
            self._made.remove(name)

    def close(self) -> None:
        """Drop every database this worker made."""
        self._scratch_engine.dispose()
        with self.admin.connect() as connection:
            for name in reversed(self._made):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def insert_count(dump: str, table: str) -> int:
    """Return how many rows of ``table`` a dump inserts (SQLite's iterdump or pg_dump's form)."""
    return len(re.findall(rf'^INSERT INTO (?:public\.)?"?{table}"? VALUES', dump, flags=re.MULTILINE))


def selected_engines(option: list[str] | None) -> list[str]:
    """Return the engines to test: ``--engine`` options, else MAPSVC_TEST_ENGINES, else both."""
    names = option or [e.strip() for e in os.environ.get("MAPSVC_TEST_ENGINES", ",".join(ENGINES)).split(",")]
    unknown = sorted(set(names) - set(ENGINES))
    if unknown:
        raise ValueError(f"unknown test engine {unknown[0]!r}: choose from {', '.join(ENGINES)}")
    return [e for e in ENGINES if e in names]
