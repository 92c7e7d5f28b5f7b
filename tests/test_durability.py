"""SQLite commits are synced before a report is acknowledged (``SQLITE_SYNCHRONOUS``)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from mapsvc import create_app

#: ``PRAGMA synchronous`` answers its level as a number.
LEVELS = {"NORMAL": 1, "FULL": 2}


def _synchronous(app) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["mapsvc.store"].engine.connect() as connection:
        return int(connection.execute(text("PRAGMA synchronous")).scalar_one())


@pytest.mark.engines("sqlite")
def test_sqlite_syncs_every_commit_by_default(app):
    assert _synchronous(app) == LEVELS["FULL"]


@pytest.mark.engines("sqlite")
@pytest.mark.parametrize("level", ["NORMAL", "full"])
def test_sqlite_synchronous_is_a_setting(app_config, level):
    app = create_app({**app_config, "SQLITE_SYNCHRONOUS": level})
    try:
        assert _synchronous(app) == LEVELS[level.upper()]
    finally:
        app.extensions["mapsvc.store"].dispose()


@pytest.mark.engines("sqlite")
@pytest.mark.parametrize("level", ["OFF", "EXTRA", "", 2])
def test_other_synchronous_levels_are_refused_naming_the_setting(app_config, level):
    with pytest.raises(ValueError, match="SQLITE_SYNCHRONOUS"):
        create_app({**app_config, "SQLITE_SYNCHRONOUS": level})
