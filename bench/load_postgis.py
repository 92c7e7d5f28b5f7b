"""Copy a benchmark store built on SQLite into a PostGIS benchmark database, row for row.

Building a store of a million reports through the intake code takes minutes on SQLite but
over an hour on PostgreSQL here (about ten round trips a report). The rows do not depend on
the engine, so the PostGIS store can be loaded from the SQLite one with COPY; the schema comes
from the migrations as usual, and PostgreSQL computes the geometry columns itself.

    .venv/bin/python bench/load_postgis.py 1000000
    .venv/bin/python bench/bench_store.py --sizes 1000000 --engines postgis
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time

import psycopg
from bench_store import POSTGRES_URL, RESULTS, Stores
from sqlalchemy import make_url

#: The tables a benchmark store fills, in an order their foreign keys allow; every column the
#: SQLite store has is copied (the geometry columns are computed by PostgreSQL, SQLite has none).
TABLES = ("events", "heat_series", "heat_steps", "reports")


def load(size: int, postgres_url: str) -> None:
    """Make mapsvc_bench_<size> from the migrations and fill it from the SQLite store."""
    source = sqlite3.connect(RESULTS / f"store-{size}.sqlite3")
    stores = Stores("postgis", postgres_url)
    stores.create(size)
    url = make_url(stores.url(size)).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as target:
        for table in TABLES:
            started = time.perf_counter()
            columns = ", ".join(row[1] for row in source.execute(f"PRAGMA table_info({table})"))
            rows = source.execute(f"SELECT {columns} FROM {table} ORDER BY id")
            with target.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            target.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            target.execute(f"ANALYZE {table}")  # the planner's statistics, before autovacuum would make them
            print(f"  {table}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    stores.mark_complete(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("size", type=int)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args()
    load(args.size, args.postgres_url)


if __name__ == "__main__":
    main()
