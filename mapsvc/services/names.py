"""Names of categories, perpetrator types and roles in the user's language."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

CATEGORY_NAMES = {
    "checkpoint": _l("Checkpoint"),
    "patrol": _l("Patrol"),
    "raid": _l("Raid"),
    "detention": _l("Detention"),
    "extortion": _l("Extortion"),
    "attack": _l("Attack"),
    "robbery": _l("Robbery"),
    "other": _l("Other"),
}

PERPETRATOR_NAMES = {
    "police": _l("Police"),
    "other_official": _l("Other official"),
    "client": _l("Client, or someone posing as one"),
    "partner": _l("Partner"),
    "gang": _l("Gang"),
    "public": _l("Member of the public"),
    "other": _l("Other"),
    "unknown": _l("Unknown"),
}

ROLE_NAMES = {
    "anonymous": _l("Anonymous visitor"),
    "peer": _l("Trusted peer"),
    "moderator": _l("Moderator"),
    "planner": _l("Outreach planner"),
    "advocate": _l("Advocate"),
    "admin": _l("Admin"),
}


def init_app(app: Flask) -> None:
    """Offer the names to every template."""
    app.jinja_env.globals["category_names"] = CATEGORY_NAMES
    app.jinja_env.globals["perpetrator_names"] = PERPETRATOR_NAMES
    app.jinja_env.globals["role_names"] = ROLE_NAMES
