"""The ``mapsvc`` command line: one module per group of commands, each a thin shell over the services and the store.

``maintenance`` (the schema, heat, demo data, prune), ``accounts``, ``advocacy``, ``backup``,
``imports``, ``roads`` and ``tiles``. ``mapsvc serve`` is :mod:`mapsvc.server`'s; the console
script itself is :mod:`mapsvc.__main__`.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the commands on the app's CLI (``flask --app mapsvc`` works too)."""
    from mapsvc.cli.accounts import accounts_group, admin_group
    from mapsvc.cli.advocacy import advocacy_group, districts_group
    from mapsvc.cli.backup import backup_command, check_backup_command, restore_command
    from mapsvc.cli.imports import import_command
    from mapsvc.cli.maintenance import db_group, demo, heat_group, prune_command
    from mapsvc.cli.roads import roads_group
    from mapsvc.cli.tiles import tiles_group

    for command in (db_group, heat_group, demo, prune_command, admin_group, import_command, roads_group):
        app.cli.add_command(command)
    for command in (tiles_group, districts_group, advocacy_group, accounts_group):
        app.cli.add_command(command)
    for command in (backup_command, check_backup_command, restore_command):
        app.cli.add_command(command)
