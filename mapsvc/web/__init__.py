"""The web layer: one package per feature, each with its blueprints, its views and its OpenAPI fragment.

Features: ``map`` (the public map, its JSON API, tiles and the plain report form), ``auth``,
``admin``, ``moderation``, ``planner``, ``advocacy`` and ``ogc`` (OGC API – Features).
``hooks`` holds what runs around every request. What several features use is a module of this
package: JSON answers (``responses``), the read cache (``readcache``, ``sharedanswers``), the map
page's configuration (``mapconfig``), the folium base map (``basemap``) and the OpenAPI document
(``openapi``, joined from the features' fragments, ``openapi_parts``). No feature imports another
(the ``features`` contract in pyproject.toml). Views parse a request, call :mod:`mapsvc.services`
(or the store for a plain read) and shape the answer. ``ogc`` keeps its own OpenAPI 3.0 document.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register every feature's blueprints, then the hooks that run around each request."""
    from mapsvc.services import names
    from mapsvc.web import admin, advocacy, auth, moderation, ogc, planner, readcache
    from mapsvc.web import map as public_map
    from mapsvc.web.auth import cookies, guessing
    from mapsvc.web.hooks import delivery, errors, holds, inputs, limits, permissions

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
