"""mapsvc: community reports of raids, checkpoints and attacks as a privacy-safe danger map."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from mapsvc.config import DEFAULTS, PROJECT_ROOT


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the app: defaults, then instance config and env, or a test mapping."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        static_folder=str(PROJECT_ROOT / "static"),
        template_folder=str(PROJECT_ROOT / "templates"),
    )
    from mapsvc.web.advocacy.uploads import Request

    app.request_class = Request
    app.config.from_mapping(DEFAULTS)
    if test_config is None:
        app.config.from_pyfile("mapsvc.cfg", silent=True)
        app.config.from_prefixed_env("MAPSVC")
    else:
        app.config.from_mapping(test_config)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Cyrillic messages as text, not \u escapes
    if not app.config["DATABASE_URL"]:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'mapsvc.sqlite3'}"

    from mapsvc import cli, i18n, logs, server, settings, store, web

    logs.init_app(app)
    i18n.init_app(app)
    settings.init_app(app)
    store.init_app(app)
    web.init_app(app)
    cli.init_app(app)
    server.init_app(app)
    logging.getLogger(__name__).debug("mapsvc app created")
    return app
