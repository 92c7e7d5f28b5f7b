"""Administration: invitations, accounts and their roles, API tokens, the audit log."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's blueprints."""
    from mapsvc.web.admin import views

    app.register_blueprint(views.bp)
