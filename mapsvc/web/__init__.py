"""The thin web layer: blueprints that parse input, call the core and the store, shape replies."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the blueprints and the error handlers."""
    from mapsvc.web import api, delivery, errors, names, pages, tiles

    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(tiles.bp)
    errors.init_app(app)
    names.init_app(app)
    delivery.init_app(app)
