"""The ``mapsvc`` console script (and ``python -m mapsvc``): the app's commands, :func:`mapsvc.create_app`'s."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask.cli import FlaskGroup


def _create_app(*_: Any) -> Flask:
    from mapsvc import create_app

    return create_app()


def main() -> None:
    """Entry point of the ``mapsvc`` console script."""
    os.environ.setdefault("FLASK_APP", "mapsvc")
    FlaskGroup(
        create_app=_create_app,
        add_default_commands=False,
        add_version_option=False,
        help="mapsvc: the danger map service.",
    )(prog_name="mapsvc")


if __name__ == "__main__":
    main()
