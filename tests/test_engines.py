"""The two engines: migrations from empty and from 0001, PostGIS points and index, equal answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from mapsvc import create_app
from mapsvc.store.db import Store, alembic_config
from tests.conftest import BISHKEK, NOW
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


@pytest.fixture
def app_at_0001(empty_url):
    """An app on a database brought only to revision 0001."""
    Store(empty_url).upgrade("0001")
    app = create_app({"TESTING": True, "DATABASE_URL": empty_url, "CLOCK": lambda: NOW})
    yield app
    app.extensions["mapsvc.store"].dispose()


def test_upgrade_from_an_empty_database_reaches_head(empty_url):
    store = Store(empty_url)

    store.upgrade()

    assert store.is_current()
    assert {"events", "reports", "heat_series", "heat_steps", "alembic_version"} <= _tables(empty_url)
    store.dispose()


@pytest.mark.engines("postgis")
def test_postgis_points_are_generated_and_gist_indexed(empty_url):
    Store(empty_url).upgrade()

    assert _point_columns(empty_url) == [
        ("events", "geometry(Point,4326)", "gist"),
        ("heat_series", "geometry(Point,4326)", "gist"),
    ]


def test_upgrade_from_0001_keeps_the_data_and_shows_it(app_at_0001):
    client = app_at_0001.test_client()
    created = [post_device(client, p).get_json()["event"]["id"] for p in POINTS]

    Store(app_at_0001.config["DATABASE_URL"]).upgrade()

    assert stored_counts(app_at_0001) == (len(POINTS), len(POINTS))
    assert sorted(layer_ids(client)) == sorted(created)


@pytest.mark.engines("postgis")
def test_upgrade_from_0001_computes_every_point(app_at_0001):
    client = app_at_0001.test_client()
    for p in POINTS:
        post_device(client, p, category="raid")
    url = app_at_0001.config["DATABASE_URL"]

    Store(url).upgrade()

    engine = create_engine(url)
    with engine.connect() as connection:
        matching = connection.execute(
            text("SELECT count(*) FROM events WHERE ST_X(geom) = lon AND ST_Y(geom) = lat AND ST_SRID(geom) = 4326")
        ).scalar()
        series = connection.execute(text("SELECT count(*) FROM heat_series WHERE geom IS NOT NULL")).scalar()
    engine.dispose()
    assert (matching, series) == (len(POINTS), len(POINTS))


def test_downgrade_to_0001_and_back_keeps_the_data(app_at_0001):
    client = app_at_0001.test_client()
    for p in POINTS:
        post_device(client, p)
    store = Store(app_at_0001.config["DATABASE_URL"])
    store.upgrade()

    command.downgrade(alembic_config(store.url), "0001")
    store.upgrade()

    assert store.is_current()
    assert stored_counts(app_at_0001) == (len(POINTS), len(POINTS))
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
    event = post_device(client, EDGE).get_json()["event"]["id"]

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
