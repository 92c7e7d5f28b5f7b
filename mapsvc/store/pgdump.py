"""PostGIS backups with PostgreSQL's own tools: ``pg_dump -Fc``, ``pg_restore`` and ``psql``.

A plain ``pg_restore`` of a mapsvc dump as the service's role exits 1: the dump holds the
postgis extension (its comment can be set only by the extension's owner, a superuser) and the
rows of its ``spatial_ref_sys``, which the role may not write. Here the extension's entries are
left out of the restore (``pg_restore -l``, then ``-L``; the extension must already be in the
target database, as for ``mapsvc db upgrade``), objects are made without owners or grants
(``--no-owner --no-privileges``), and the whole restore runs as one transaction in ``psql``:
mapsvc's tables are dropped and made again from the dump, and it commits only once all of it
went through (``ON_ERROR_STOP``), so a failed restore leaves the database as it was.

The password never goes on a command line (where ``ps`` shows it): it is passed in the tools'
environment. Their messages are shown without the rows they quote (``DETAIL``, ``CONTEXT``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from sqlalchemy import make_url

from mapsvc.core.errors import MapsvcError

#: Tables that belong to the postgis extension: made by CREATE EXTENSION, never restored.
EXTENSION_TABLES = ("spatial_ref_sys",)

#: How long the restore waits for the tables' locks before giving up (the service is meant to be stopped).
LOCK_TIMEOUT = "30s"

#: mapsvc's tables in the target: every table of the current schema that no extension owns.
_OUR_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT EXISTS (
    SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
)
"""

#: A PL/pgSQL block that drops them all, run first in the restore's transaction.
_DROP_OUR_TABLES = f"""
DO $$DECLARE name text;
BEGIN
    FOR name IN {_OUR_TABLES} LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', name);
    END LOOP;
END$$;
"""

#: Entries of ``pg_restore --list`` that the extension owns: itself, its comment, its tables' rows.
_EXTENSIONS_OWN = re.compile(
    rf"^\d+; \d+ \d+ (EXTENSION |COMMENT - EXTENSION |TABLE DATA \S+ ({'|'.join(EXTENSION_TABLES)}) )"
)
_COPY = re.compile(r"^COPY (?:\w+\.)?\"?(\w+)\"? \(.*\) FROM stdin;$")


class ToolFailed(MapsvcError):
    """A PostgreSQL tool failed; the message is its own first error line."""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ToolFailed(f"{name} was not found: install PostgreSQL's client programs (Debian: postgresql-client)")
    return found


def libpq(url: str) -> tuple[str, dict[str, str]]:
    """Return the libpq URI of a SQLAlchemy URL, without its password, and the environment carrying it."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    uri = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _first_error(stderr: str, tool: str) -> str:
    """Return the tool's error without the rows it may quote."""
    lines = [
        line for line in stderr.splitlines() if line.strip() and not line.lstrip().startswith(("DETAIL", "CONTEXT"))
    ]
    errors = [line for line in lines if "ERROR" in line or "error" in line or "FATAL" in line]
    return f"{tool} failed: {(errors or lines or ['no message'])[0].strip()}"


def dump(url: str, out: IO[bytes]) -> None:
    """Write ``pg_dump -Fc`` of the database to ``out``: one snapshot, while writers go on."""
    uri, env = libpq(url)
    done = subprocess.run([_tool("pg_dump"), "--format=custom", uri], stdout=out, stderr=subprocess.PIPE, env=env)
    if done.returncode != 0:
        raise ToolFailed(_first_error(done.stderr.decode(errors="replace"), "pg_dump"))


def _restore_list(path: Path) -> str:
    """Return the dump's table of contents without the extension's entries and data."""
    done = subprocess.run([_tool("pg_restore"), "--list", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolFailed(_first_error(done.stderr, "pg_restore"))
    # An entry reads "<id>; <class oid> <object oid> <description> <owner>", e.g.
    # "4431; 0 0 COMMENT - EXTENSION postgis" or "4155; 0 16702 TABLE DATA public spatial_ref_sys postgres".
    kept = [f";{line}" if _EXTENSIONS_OWN.match(line) else line for line in done.stdout.splitlines()]
    return "\n".join(kept) + "\n"  # ";" comments an entry out


def _script(path: Path, listing: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``pg_restore`` writing the dump (or its ``listing``'s entries) as SQL to its stdout."""
    command = [_tool("pg_restore"), "--no-owner", "--no-privileges", "--file=-"]
    if listing is not None:
        command.append(f"--use-list={listing}")
    return subprocess.Popen([*command, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def inspect(path: Path) -> tuple[str | None, dict[str, int]]:
    """Read the whole dump (so a damaged one fails here); return its revision and rows per table."""
    counts: dict[str, int] = {}
    revision: str | None = None
    table: str | None = None
    with _script(path) as script:
        assert script.stdout is not None and script.stderr is not None
        for raw in script.stdout:
            line = raw.rstrip(b"\n").decode(errors="replace")
            if table is None:
                match = _COPY.match(line)
                if match:
                    table = match.group(1)
                    counts[table] = 0
            elif line == "\\.":
                table = None
            else:
                counts[table] += 1
                if table == "alembic_version":
                    revision = line
        stderr = script.stderr.read().decode(errors="replace")
    if script.returncode != 0:
        raise ToolFailed(_first_error(stderr, "pg_restore"))
    return revision, counts


def restore(url: str, path: Path) -> None:
    """Replace mapsvc's tables in the database with the dump's, in one transaction."""
    uri, env = libpq(url)
    env["PGOPTIONS"] = "-c client_min_messages=warning"  # no notices to fill the pipe while the script flows
    # The list of entries to restore (names only) goes to a private temporary file, not beside the
    # backup, whose folder may be read-only.
    with tempfile.NamedTemporaryFile("w", prefix="mapsvc-restore-", suffix=".list") as listing:
        listing.write(_restore_list(path))
        listing.flush()
        _run_restore(uri, env, path, Path(listing.name))


def _run_restore(uri: str, env: dict[str, str], path: Path, listing: Path) -> None:
    """Feed psql: a check for postgis, the drops, pg_restore's script, and COMMIT only if all of it came."""
    command = [_tool("psql"), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", f"--dbname={uri}"]
    pipes: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    with subprocess.Popen(command, stdin=subprocess.PIPE, env=env, **pipes) as psql, _script(path, listing) as script:
        assert psql.stdin is not None and psql.stderr is not None
        assert script.stdout is not None and script.stderr is not None
        complete = False
        try:
            psql.stdin.write(_preamble().encode())
            shutil.copyfileobj(script.stdout, psql.stdin)
            complete = script.wait() == 0
            if complete:
                psql.stdin.write(b"COMMIT;\n")
            psql.stdin.close()
        except BrokenPipeError:  # psql stopped at an error: it says which below
            script.kill()
            with suppress(BrokenPipeError):
                psql.stdin.close()  # closed even though what was left unsent cannot be
        restore_errors = script.stderr.read().decode(errors="replace")
        psql_errors = psql.stderr.read().decode(errors="replace")
    if psql.returncode != 0:
        raise ToolFailed(_first_error(psql_errors, "the restore (psql)"))
    if not complete:
        raise ToolFailed(_first_error(restore_errors, "pg_restore"))


def _preamble() -> str:
    """Return what runs before the dump's script: the transaction, the extension's check, the drops."""
    return f"""
BEGIN;
SET LOCAL lock_timeout = '{LOCK_TIMEOUT}';
DO $$BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis') THEN
        RAISE EXCEPTION 'the postgis extension is missing: as a superuser, CREATE EXTENSION postgis in this database';
    END IF;
END$$;
{_DROP_OUR_TABLES}
"""
