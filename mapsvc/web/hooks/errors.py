"""Errors answered as JSON for the API and as a short page for people; never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, InternalServerError

from mapsvc.core.errors import MapsvcError
from mapsvc.store.db import DatabaseUnavailable, as_unavailable

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    if request.path.startswith(("/api/", "/tiles/")):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    if request.path == "/ogc" or request.path.startswith("/ogc/"):
        # GIS clients get JSON, as OGC API - Features answers by default; browsers get a page.
        return request.args.get("f") != "html" and best != "text/html"
    return best == "application/json"


def _reply(error: MapsvcError) -> tuple[Response | str, int]:
    """Answer ``error`` in the client's format: its JSON body (:meth:`MapsvcError.to_dict`), or a short page."""
    if _wants_json():
        return jsonify(error.to_dict()), error.status
    return render_template("error.html", message=error.message, status=error.status), error.status


def handle_mapsvc_error(error: MapsvcError) -> tuple[Response | str, int]:
    """Answer a client error with its message and the field it names."""
    return _reply(error)


def handle_unavailable(error: DatabaseUnavailable) -> tuple[Response | str, int, dict[str, str]]:
    """Answer 503 with the problem named and a hint to retry; the pool reconnects by itself."""
    log.warning("database unavailable on %s %s", request.method, request.url_rule)
    return (*_reply(error), {"Retry-After": "5", "Cache-Control": "no-store"})


def handle_http_error(error: HTTPException) -> tuple[Response | str, int, list[tuple[str, str]]]:
    """Answer werkzeug's errors (404, 405, 413, ...) in the client's format, with their headers (405's Allow)."""
    messages = {
        413: _("the request body is too large"),
        429: _("too many requests from this connection; wait a little and try again"),
    }
    status = error.code or 500
    headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
    return (*_reply(MapsvcError(messages.get(status, error.description or error.name), status=status)), headers)


def handle_unexpected(error: Exception) -> tuple[Response | str, int] | tuple[Response | str, int, dict[str, str]]:
    """Log the error's type only (messages may hold values) and answer a plain 500.

    Write transactions roll back in their own context managers before this runs. A database
    that cannot be reached is not a bug here: it is answered 503.
    """
    unavailable = as_unavailable(error)
    if unavailable is not None:
        return handle_unavailable(unavailable)
    log.error("unexpected %s on %s %s", type(error).__name__, request.method, request.url_rule)
    return _reply(MapsvcError(InternalServerError.description, status=500))


def init_app(app: Flask) -> None:
    """Register the handlers."""
    app.register_error_handler(DatabaseUnavailable, handle_unavailable)
    app.register_error_handler(MapsvcError, handle_mapsvc_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
