"""Administration pages: invitations, accounts and their roles, every API token, the audit log.

Changes that give or move power (an invitation, a role, disabling or enabling an account) need a
fresh sign-in (:mod:`mapsvc.web.auth.reauth`); withdrawing an invitation or revoking a token does not.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from mapsvc.core.errors import InvalidInput, MapsvcError
from mapsvc.core.roles import Role
from mapsvc.services import parse
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.accounts import (
    change_role,
    get_account,
    list_accounts,
    list_invitations,
    make_invitation,
    parse_role,
    revoke_invitation,
    set_disabled,
)
from mapsvc.store.audit import recent_actions, record_action
from mapsvc.store.logins import list_tokens, revoke_token
from mapsvc.web.auth.identity import current_identity
from mapsvc.web.auth.reauth import fresh_sign_in

bp = Blueprint("admin", __name__, url_prefix="/admin")

Page = tuple[str, int]
AUDIT_PAGE = 50
ACCOUNT_ROLES = [r for r in Role if r is not Role.ANONYMOUS]


@bp.get("/")
def index() -> str:
    """Show the administration sections."""
    return render_template("admin/index.html")


def _invitations_page(code: str | None = None, error: MapsvcError | None = None, status: int = 200) -> Page:
    with get_store().reader() as session:
        invitations = list_invitations(session)
        names = {a.id: a.username for a in list_accounts(session)}
    context = {
        "invitations": invitations,
        "names": names,
        "roles": ACCOUNT_ROLES,
        "code": code,
        "now": settings().now(),
        "max_days": settings().accounts.invitation_max_days,
        "error": error,
    }
    return render_template("admin/invitations.html", **context), (error.status if error else status)


@bp.get("/invitations")
def invitations() -> Page:
    """List invitations, with a form for a new one."""
    return _invitations_page()


@bp.post("/invitations")
@fresh_sign_in("admin.invitations")
def invitation_create() -> Page:
    """Make an invitation for one role, valid for some days; its code is shown once."""
    s = settings()
    now, max_days = s.now(), s.accounts.invitation_max_days
    try:
        role = parse_role(request.form.get("role"))
        days = parse.integer(request.form.get("days"), "days", 7, 1, max_days)
        with get_store().writing() as session:
            code = make_invitation(session, role, days, now, current_identity().account_id, max_days)
            record_action(session, current_identity().actor, "invitation_made", now, detail=f"role {role}, {days} days")
    except InvalidInput as error:
        return _invitations_page(error=error)
    return _invitations_page(code=code, status=201)


@bp.post("/invitations/<int:invitation_id>/revoke")
def invitation_revoke(invitation_id: int) -> Response:
    """Withdraw an unused invitation."""
    with get_store().writing() as session:
        invitation = revoke_invitation(session, invitation_id)
        record_action(
            session, current_identity().actor, "invitation_revoked", settings().now(), detail=f"role {invitation.role}"
        )
    return redirect(url_for("admin.invitations"), 303)


def _accounts_page(error: MapsvcError | None = None) -> Page:
    with get_store().reader() as session:
        accounts = list_accounts(session)
    page = render_template("admin/accounts.html", accounts=accounts, roles=ACCOUNT_ROLES, error=error)
    return page, (error.status if error else 200)


@bp.get("/accounts")
def accounts() -> Page:
    """List the accounts with their role and state."""
    return _accounts_page()


@bp.post("/accounts/<int:account_id>/role")
@fresh_sign_in("admin.accounts")
def account_role(account_id: int) -> Page | Response:
    """Give an account another role; its sessions and tokens end."""
    try:
        role = parse_role(request.form.get("role"))
        with get_store().writing() as session:
            account = get_account(session, account_id)
            old = change_role(session, account, role)
            if old != role.value:
                detail = f"{account.username}: {old} -> {role}"
                record_action(session, current_identity().actor, "role_changed", settings().now(), detail=detail)
    except InvalidInput as error:
        return _accounts_page(error)
    return redirect(url_for("admin.accounts"), 303)


def _set_disabled(account_id: int, disabled: bool) -> Page | Response:
    try:
        with get_store().writing() as session:
            account = get_account(session, account_id)
            set_disabled(session, account, disabled)
            action = "account_disabled" if disabled else "account_enabled"
            record_action(session, current_identity().actor, action, settings().now(), detail=account.username)
    except InvalidInput as error:
        return _accounts_page(error)
    return redirect(url_for("admin.accounts"), 303)


@bp.post("/accounts/<int:account_id>/disable")
@fresh_sign_in("admin.accounts")
def account_disable(account_id: int) -> Page | Response:
    """Disable an account: it cannot sign in, and its sessions and tokens end."""
    return _set_disabled(account_id, True)


@bp.post("/accounts/<int:account_id>/enable")
@fresh_sign_in("admin.accounts")
def account_enable(account_id: int) -> Page | Response:
    """Enable a disabled account again."""
    return _set_disabled(account_id, False)


@bp.get("/tokens")
def tokens() -> str:
    """List every API token with its owner."""
    with get_store().reader() as session:
        rows = list_tokens(session)
    return render_template("admin/tokens.html", tokens=rows)


@bp.post("/tokens/<int:token_id>/revoke")
def token_revoke(token_id: int) -> Response:
    """Revoke anyone's API token."""
    with get_store().writing() as session:
        token = revoke_token(session, token_id)
        record_action(session, current_identity().actor, "token_revoked", settings().now(), detail=token.name)
    return redirect(url_for("admin.tokens"), 303)


@bp.get("/audit")
def audit() -> str:
    """Show the audit log, newest first, a page at a time (``?before=<id>`` for older ones)."""
    before = request.args.get("before")
    before_id = parse.integer(before, "before", 0, 1, 2**62) if before else None
    with get_store().reader() as session:
        entries = recent_actions(session, AUDIT_PAGE + 1, before_id)
    older = entries[AUDIT_PAGE - 1].id if len(entries) > AUDIT_PAGE else None
    return render_template("admin/audit.html", entries=entries[:AUDIT_PAGE], older=older, title=_("Audit log"))
