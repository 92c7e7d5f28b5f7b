"""The two engines: migrations from empty and from 0001, PostGIS points and index, equal answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import MetaData, create_engine, inspect, select, text

from mapsvc import create_app
from mapsvc.store.db import Store, alembic_config
from mapsvc.store.models import Base
from tests.conftest import BISHKEK, NOW
from tests.databases import KEPT_TABLES, TABLES
from tests.helpers import layer_ids, post_device, stored_counts

POINTS = [(42.8746, 74.5698), (42.8801, 74.5912), (42.8655, 74.6013), (42.8902, 74.5511)]


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _point_columns(url: str) -> list[tuple[str, str, str]]:
    """Return (table, column type, index method) of every geometry column with its index."""
    engine = create_engine(url)
    sql = """
        SELECT c.table_name, format_type(a.atttypid, a.atttypmod), am.amname
        FROM information_schema.columns c
        JOIN pg_attribute a ON a.attrelid = c.table_name::regclass AND a.attname = c.column_name
        JOIN pg_index i ON i.indrelid = a.attrelid AND a.attnum = ANY(i.indkey)
        JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
        WHERE c.column_name = 'geom' AND c.is_generated = 'ALWAYS' ORDER BY 1
    """
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


@pytest.fixture
def empty_url(migrated_template, tmp_path):
    url = migrated_template.empty(tmp_path)
    yield url
    migrated_template.drop(url)


def _copy_rows(source: str, target: str, tables: list[str]) -> None:
    """Copy every row of ``tables``, only the columns the target's (older) tables have."""
    source_engine, target_engine = create_engine(source), create_engine(target)
    try:
        metadata = MetaData()
        metadata.reflect(target_engine, only=tables)
        with source_engine.connect() as read, target_engine.begin() as write:
            for name in tables:
                table = metadata.tables[name]
                columns = [c for c in table.columns if not c.computed]
                rows = read.execute(select(*columns)).mappings().all()
                write.execute(table.insert(), [dict(r) for r in rows])
    finally:
        source_engine.dispose()
        target_engine.dispose()


@pytest.fixture
def filled_at_0001(migrated_template, tmp_path):
    """Return a maker of databases at revision 0001 holding reports of POINTS in a category.

    The reports go in through today's intake on a database at head and are then copied into
    the tables of revision 0001, as a deployment of that revision would have kept them.
    """
    made: list[str] = []

    def make(category: str = "checkpoint") -> tuple[str, list[str]]:
        (tmp_path / "head").mkdir(exist_ok=True)
        head_url, old_url = migrated_template.empty(tmp_path / "head"), migrated_template.empty(tmp_path)
        made.extend([head_url, old_url])
        Store(head_url).upgrade()
        app = create_app({"TESTING": True, "DATABASE_URL": head_url, "CLOCK": lambda: NOW})
        created = [post_device(app.test_client(), p, category=category).event_id for p in POINTS]
        app.extensions["mapsvc.store"].dispose()
        Store(old_url).upgrade("0001")
        _copy_rows(head_url, old_url, ["events", "reports", "heat_series", "heat_steps"])
        return old_url, created

    yield make
    for url in made:
        migrated_template.drop(url)


def _app(url: str) -> Flask:
    return create_app({"TESTING": True, "DATABASE_URL": url, "CLOCK": lambda: NOW})


def test_upgrade_from_an_empty_database_reaches_head(empty_url):
    store = Store(empty_url)

    store.upgrade()

    assert store.is_current()
    assert {"events", "reports", "heat_series", "heat_steps", "alembic_version"} <= _tables(empty_url)
    store.dispose()


def test_serve_knows_how_many_connections_postgresql_allows_its_workers(empty_url):
    """``mapsvc serve`` warns when its workers could open more connections than this."""
    store = Store(empty_url)

    allowed = store.connections_allowed()

    if store.dialect == "sqlite":
        assert allowed is None
    else:
        with store.engine.connect() as connection:
            most = int(connection.exec_driver_sql("SHOW max_connections").scalar_one())
        assert 0 < allowed < most  # less what is kept for superusers
    store.dispose()


@pytest.mark.engines("postgis")
def test_postgis_points_are_generated_and_gist_indexed(empty_url):
    Store(empty_url).upgrade()

    assert _point_columns(empty_url) == [
        ("events", "geometry(Point,4326)", "gist"),
        ("heat_series", "geometry(Point,4326)", "gist"),
    ]


def test_upgrade_from_0001_keeps_the_data_and_shows_it(filled_at_0001):
    url, created = filled_at_0001()

    Store(url).upgrade()

    app = _app(url)
    assert stored_counts(app) == (len(POINTS), len(POINTS))
    assert sorted(layer_ids(app.test_client())) == sorted(created)
    app.extensions["mapsvc.store"].dispose()


@pytest.mark.engines("postgis")
def test_upgrade_from_0001_computes_every_point(filled_at_0001):
    url, _ = filled_at_0001("raid")

    Store(url).upgrade()

    engine = create_engine(url)
    with engine.connect() as connection:
        matching = connection.execute(
            text("SELECT count(*) FROM events WHERE ST_X(geom) = lon AND ST_Y(geom) = lat AND ST_SRID(geom) = 4326")
        ).scalar()
        series = connection.execute(text("SELECT count(*) FROM heat_series WHERE geom IS NOT NULL")).scalar()
    engine.dispose()
    assert (matching, series) == (len(POINTS), len(POINTS))


def test_downgrade_to_0001_and_back_keeps_the_data(filled_at_0001):
    url, _ = filled_at_0001()
    store = Store(url)
    store.upgrade()

    command.downgrade(alembic_config(store.url), "0001")
    store.upgrade()

    assert store.is_current()
    app = _app(url)
    assert stored_counts(app) == (len(POINTS), len(POINTS))
    app.extensions["mapsvc.store"].dispose()
    store.dispose()


# --- the same answers on both engines, at the edges of a bbox -----------------------------------

EDGE = (42.8746, 74.5698)
EPS = 1e-9


@pytest.mark.parametrize(
    ("bbox", "shown"),
    [
        ((EDGE[1], EDGE[0], EDGE[1] + 0.01, EDGE[0] + 0.01), True),  # the point is the lower-left corner
        ((EDGE[1] - 0.01, EDGE[0] - 0.01, EDGE[1], EDGE[0]), True),  # the upper-right corner
        ((EDGE[1] + EPS, EDGE[0], EDGE[1] + 0.01, EDGE[0] + 0.01), False),  # a hair east of the point
        ((EDGE[1] - 0.01, EDGE[0] - 0.01, EDGE[1], EDGE[0] - EPS), False),  # a hair south of it
        ((EDGE[1] - 1e-5, EDGE[0] - 1e-5, EDGE[1] + 1e-5, EDGE[0] + 1e-5), True),  # a box smaller than a float4 step
    ],
)
def test_bbox_edges_are_inclusive_and_exact(client, bbox, shown):
    event = post_device(client, EDGE).event_id

    ids = layer_ids(client, bbox=",".join(repr(v) for v in bbox))

    assert ids == ([event] if shown else [])


def test_heat_bbox_keeps_cells_whose_centre_lies_in_the_margin(client):
    for hours in range(3):
        post_device(client, BISHKEK, category="raid", occurred_at=NOW - timedelta(hours=hours))
    lat, lon = BISHKEK
    near = f"{lon + 0.001},{lat + 0.001},{lon + 0.002},{lat + 0.002}"
    far = f"{lon + 0.3},{lat + 0.3},{lon + 0.31},{lat + 0.31}"

    assert client.get("/api/heat", query_string={"bbox": near}).get_json()["features"]
    assert not client.get("/api/heat", query_string={"bbox": far}).get_json()["features"]


@pytest.mark.engines("postgis")
def test_postgis_bbox_query_can_use_the_gist_index(app):
    url = app.config["DATABASE_URL"]
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.execute(text("SET enable_seqscan = off"))
        plan = connection.execute(
            text("EXPLAIN SELECT id FROM events WHERE geom && ST_MakeEnvelope(74.5, 42.8, 74.6, 42.9, 4326)")
        ).all()
    engine.dispose()
    assert "ix_events_geom" in "\n".join(row[0] for row in plan)


def test_the_migrations_make_exactly_the_models_tables(empty_url):
    """Models and migrations agree: autogenerate finds nothing to add, drop or change."""
    Store(empty_url).upgrade()

    def ours(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
        # PostGIS's own tables, and the generated points only PostgreSQL has (migration 0002).
        return name not in {"spatial_ref_sys", "geom", "ix_events_geom", "ix_heat_series_geom"} and not (
            type_ == "table" and name.startswith(("topology", "layer"))
        )

    engine = create_engine(empty_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": ours, "compare_type": True, "compare_server_default": False}
        )
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_every_table_of_the_schema_is_emptied_between_tests_or_kept_on_purpose(empty_url):
    """A table missing from tests/databases.py's list leaks its rows from one PostGIS test into the next."""
    store = Store(empty_url)
    store.upgrade()
    tables = set(inspect(store.engine).get_table_names()) - {"spatial_ref_sys"}
    store.dispose()

    assert tables == set(TABLES) | set(KEPT_TABLES)
