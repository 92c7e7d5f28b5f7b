"""The web layer: one package per feature, each with its blueprints, its views and its OpenAPI fragment.

Features: ``map`` (the public map, its JSON API, tiles and the plain report form), ``auth``,
``admin``, ``moderation``, ``planner``, ``advocacy`` and ``ogc`` (OGC API – Features).
``hooks`` holds what runs around every request. Views parse a request, call
:mod:`mapsvc.services` (or the store for a plain read) and shape the answer. ``openapi`` assembles
the JSON API's OpenAPI document from the features' fragments, built from the parts in ``openapi_parts``
(``ogc`` keeps its own OpenAPI 3.0 document).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register every feature's blueprints, then the hooks that run around each request."""
    from mapsvc.services import names
    from mapsvc.web import admin, advocacy, auth, moderation, ogc, planner
    from mapsvc.web import map as public_map
    from mapsvc.web.auth import cookies, guessing
    from mapsvc.web.hooks import delivery, errors, holds, inputs, limits, permissions
    from mapsvc.web.map import readcache

    for feature in (public_map, moderation, auth, admin, planner, advocacy, ogc):
        feature.init_app(app)
    # Before every request, in this order: rate limits, who is asking, the permission table, CSRF.
    limits.init_app(app)
    guessing.init_app(app)
    cookies.init_app(app)
    permissions.init_app(app)
    app.before_request(cookies.check_csrf)
    app.before_request(inputs.refuse_unstorable_parameters)
    errors.init_app(app)
    readcache.init_app(app)
    names.init_app(app)
    delivery.init_app(app)
    holds.init_app(app)
