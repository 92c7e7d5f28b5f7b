"""What every endpoint requires: the one table, and the hook that enforces it.

Every endpoint of ``app.url_map`` (``static`` included) has one entry: ``PUBLIC`` or the
capability it needs (see ``mapsvc.core.roles`` for which role has which). An endpoint missing
from the table is refused for everyone and logged as a programming error, and the permission
matrix test fails, so that no endpoint goes out without a decision. To add an endpoint, add a
line here in its blueprint's group.

Refusals: an anonymous requester without the capability gets 401 (JSON under ``/api/``, a
redirect to the sign-in page elsewhere); a signed-in one gets 403.
"""

from __future__ import annotations

import logging
from typing import Final

from flask import Flask, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from mapsvc.core.errors import Forbidden, SignInRequired
from mapsvc.core.roles import Capability, Role
from mapsvc.web.auth.identity import current_identity
from mapsvc.web.auth.redirects import local_path

log = logging.getLogger(__name__)

#: Needs nothing: the sign-in pages, static assets, health and the API description.
PUBLIC: Final = "public"

C = Capability
PERMISSIONS: dict[str, Capability | str] = {
    "static": PUBLIC,
    # the map and reporting (pages, api, tiles)
    "pages.index": C.VIEW_MAP,
    "pages.report_form": C.REPORT,
    "pages.report_submit": C.REPORT,
    "pages.report_withdraw_form": C.REPORT,
    "pages.report_withdraw": C.REPORT,
    "tiles.tile": C.VIEW_MAP,
    "api.categories": C.VIEW_MAP,
    "api.layers": C.VIEW_MAP,
    "api.heat": C.VIEW_MAP,
    "api.create_report": C.REPORT,
    "api.delete_report": C.REPORT,
    # OGC API - Features: the public layers for GIS clients, what /api/layers shows anyone
    "ogc.landing": C.VIEW_MAP,
    "ogc.conformance": C.VIEW_MAP,
    "ogc.openapi": C.VIEW_MAP,
    "ogc.collections": C.VIEW_MAP,
    "ogc.collection": C.VIEW_MAP,
    "ogc.items": C.VIEW_MAP,
    "ogc.item": C.VIEW_MAP,
    "api.health": PUBLIC,
    "api.openapi": PUBLIC,
    "auth.me": PUBLIC,
    # signing in and one's own account (auth)
    "auth.login": PUBLIC,
    "auth.login_submit": PUBLIC,
    "auth.second_factor": PUBLIC,
    "auth.second_factor_submit": PUBLIC,
    "auth.logout": PUBLIC,
    "auth.forget_browser": PUBLIC,
    "auth.invite_form": PUBLIC,
    "auth.invite_link": PUBLIC,
    "auth.invite_submit": PUBLIC,
    "auth.account": C.OWN_ACCOUNT,
    "auth.password": C.OWN_ACCOUNT,
    "auth.logout_everywhere": C.OWN_ACCOUNT,
    "auth.totp_setup": C.OWN_ACCOUNT,
    "auth.totp_enable": C.OWN_ACCOUNT,
    "auth.totp_disable": C.OWN_ACCOUNT,
    "auth.tokens": C.OWN_ACCOUNT,
    "auth.token_create": C.OWN_ACCOUNT,
    "auth.token_revoke": C.OWN_ACCOUNT,
    "reauth.confirm": C.OWN_ACCOUNT,
    "reauth.confirm_submit": C.OWN_ACCOUNT,
    # administration (admin)
    "admin.index": C.MANAGE_ACCOUNTS,
    "admin.invitations": C.MANAGE_ACCOUNTS,
    "admin.invitation_create": C.MANAGE_ACCOUNTS,
    "admin.invitation_revoke": C.MANAGE_ACCOUNTS,
    "admin.accounts": C.MANAGE_ACCOUNTS,
    "admin.account_role": C.MANAGE_ACCOUNTS,
    "admin.account_disable": C.MANAGE_ACCOUNTS,
    "admin.account_enable": C.MANAGE_ACCOUNTS,
    "admin.tokens": C.MANAGE_ACCOUNTS,
    "admin.token_revoke": C.MANAGE_ACCOUNTS,
    "admin.audit": C.READ_AUDIT,
    # moderation (moderation: the API; moderate: the page)
    "moderation.queue": C.MODERATE,
    "moderate.queue": C.MODERATE,
    "moderate.event": C.MODERATE,
    "moderate.act_on": C.MODERATE,
    "moderation.event": C.MODERATE,
    "moderation.approve": C.MODERATE,
    "moderation.reject": C.MODERATE,
    "moderation.verify": C.MODERATE,
    "moderation.change_category": C.MODERATE,
    "moderation.merge": C.MODERATE,
    "moderation.split": C.MODERATE,
    # advocacy: hotspots, charts, exports, the printable report (advocacy)
    "advocacy.index": C.ADVOCACY,
    "advocacy.report": C.ADVOCACY,
    "advocacy.chart_file": C.ADVOCACY,
    "advocacy.export": C.ADVOCACY,
    # advocacy: districts and past documentation uploaded from the browser (advocacy)
    "advocacy.data": C.ADVOCACY,
    "advocacy.data_districts": C.ADVOCACY,
    "advocacy.data_reports": C.ADVOCACY,
    # route planning (routing: the API; planner: the page and its exports)
    "routing.routes": C.PLAN_ROUTES,
    "routing.sessions": C.PLAN_ROUTES,
    "planner.page": C.PLAN_ROUTES,
    "planner.gpx": C.PLAN_ROUTES,
    "planner.sheet": C.PLAN_ROUTES,
}


class MissingPermission(LookupError):
    """An endpoint has no entry in the permission table."""


def required(endpoint: str) -> Capability | None:
    """Return the capability ``endpoint`` needs, None if public; raise if the table has no entry."""
    try:
        need = PERMISSIONS[endpoint]
    except KeyError:
        raise MissingPermission(endpoint) from None
    return None if need == PUBLIC else Capability(need)


def enforce() -> Response | None:
    """Let the request through, send an anonymous person to sign in, or refuse (401/403)."""
    endpoint = request.endpoint
    if endpoint is None:
        return None  # no route matched: 404 or 405 follows
    try:
        need = required(endpoint)
    except MissingPermission:
        log.error("programming error: endpoint %s has no entry in the permission table", endpoint)
        raise Forbidden(_("this address has no permission decision yet; it is refused")) from None
    identity = current_identity()
    if need is None or identity.can(need):
        return None
    if identity.role is not Role.ANONYMOUS:
        raise Forbidden(_("your role may not do this"))
    if request.path.startswith("/api/"):
        raise SignInRequired(_("sign in or send an API token to do this"))
    return redirect(url_for("auth.login", next=local_path(request.full_path.rstrip("?"))), 303)


def unchecked_endpoints(app: Flask) -> set[str]:
    """Return the app's endpoints that have no entry in the table."""
    return {rule.endpoint for rule in app.url_map.iter_rules()} - set(PERMISSIONS)


def init_app(app: Flask) -> None:
    """Enforce the table before every request (after the identity is known)."""
    app.before_request(enforce)
