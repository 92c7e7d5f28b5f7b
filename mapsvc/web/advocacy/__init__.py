"""The advocates' pages: hotspots, charts, tables, exports and the data page's uploads."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's blueprints."""
    from mapsvc.web.advocacy import views

    app.register_blueprint(views.bp)
