"""Signing in and out, invitations, one's own account; who is asking, and the cookie that says so.

``identity`` answers who is asking; ``cookies`` holds the session cookie and CSRF tokens;
``guessing`` and ``devices`` slow down wrong passwords; ``reauth`` asks for a fresh sign-in
before security changes.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's blueprints."""
    from mapsvc.web.auth import reauth, views

    app.register_blueprint(views.bp)
    app.register_blueprint(reauth.bp)
