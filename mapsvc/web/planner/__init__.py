"""Outreach planning: the route API (``api``) and the planner's page with its exports (``page``)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's blueprints."""
    from mapsvc.web.planner import api, page

    app.register_blueprint(api.bp)
    app.register_blueprint(page.bp)
