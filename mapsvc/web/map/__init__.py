"""The public map: its page and plain report form, the JSON API of reports and layers, tiles.

Anyone may read and report here; what a reader gets is shaped by ``mapsvc.services`` and the
public layers of the store. ``openapi`` is its part of the JSON API's OpenAPI document.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's blueprints."""
    from mapsvc.web.map import api, pages, tiles

    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(tiles.bp)
