"""``mapsvc serve``: gunicorn's workers, the write lane, and reports handed to the intake worker.

``command`` is the command; ``worker`` answers gunicorn's own errors in JSON; ``lanes`` gives
requests that change something threads of their own; ``handover`` hands them, unread, to the
intake worker.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register ``mapsvc serve``."""
    from mapsvc.server.command import serve

    app.cli.add_command(serve)
