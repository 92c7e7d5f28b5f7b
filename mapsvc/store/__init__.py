"""The store owns the database: models, queries, and the conversion of rows to values."""

from __future__ import annotations

from flask import Flask, current_app

from mapsvc.settings import Settings
from mapsvc.store.db import Store


def init_app(app: Flask) -> None:
    """Open the app's database (the schema comes only from migrations: ``mapsvc db upgrade``)."""
    made: Settings = app.extensions["mapsvc.settings"]
    database = made.database
    app.extensions["mapsvc.store"] = Store(database.url, database.sqlite_synchronous)


def get_store() -> Store:
    """Return the current app's store."""
    value: Store = current_app.extensions["mapsvc.store"]
    return value
