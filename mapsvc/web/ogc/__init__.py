"""OGC API – Features over the public layers, for QGIS, GDAL and other GIS clients."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's blueprints."""
    from mapsvc.web.ogc import views

    app.register_blueprint(views.bp)
