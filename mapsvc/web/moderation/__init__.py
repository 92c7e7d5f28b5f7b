"""Moderation: the queue as a page for people (``page``) and as a JSON API (``api``)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's blueprints."""
    from mapsvc.web.moderation import api, page

    app.register_blueprint(api.bp)
    app.register_blueprint(page.bp)
