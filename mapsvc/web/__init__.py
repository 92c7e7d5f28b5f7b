"""The thin web layer: blueprints that parse input, call the core and the store, shape replies."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the blueprints and the error handlers."""
    from mapsvc.web import (
        admin,
        advocacy,
        api,
        auth,
        delivery,
        errors,
        guessing,
        holds,
        inputs,
        limits,
        moderate,
        moderation,
        names,
        ogc,
        pages,
        permissions,
        planner,
        plans,
        readcache,
        reauth,
        routing,
        sessions,
        tiles,
    )

    app.register_blueprint(api.bp)
    app.register_blueprint(moderation.bp)
    app.register_blueprint(moderate.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(tiles.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(reauth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(routing.bp)
    app.register_blueprint(planner.bp)
    app.register_blueprint(advocacy.bp)
    app.register_blueprint(ogc.bp)
    # Before every request, in this order: rate limits, who is asking, the permission table, CSRF.
    limits.init_app(app)
    guessing.init_app(app)
    sessions.init_app(app)
    permissions.init_app(app)
    app.before_request(sessions.check_csrf)
    app.before_request(inputs.refuse_unstorable_parameters)
    errors.init_app(app)
    readcache.init_app(app)
    tiles.init_app(app)
    names.init_app(app)
    delivery.init_app(app)
    holds.init_app(app)
    plans.init_app(app)
