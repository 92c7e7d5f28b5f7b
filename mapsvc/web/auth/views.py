"""Signing in and out, accepting an invitation, and one's own account: password, two-factor, tokens."""

from __future__ import annotations

from typing import Any

import segno
from flask import Blueprint, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.wrappers import Response

from mapsvc.core.errors import InvalidInput, MapsvcError
from mapsvc.core.roles import CAPABILITIES, STAFF_ROLES, Role
from mapsvc.services.accounts import account_policy, totp_policy
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.accounts import (
    accept_invitation,
    authenticate,
    change_password,
    find_account,
    get_account,
    needs_second_factor,
    parse_role,
    role_within,
    sign_out_everywhere,
)
from mapsvc.store.audit import record_action
from mapsvc.store.logins import (
    close_session,
    complete_session,
    list_tokens,
    make_token,
    mark_second_factor_done,
    open_session,
    revoke_token,
)
from mapsvc.store.totp import check_totp, disable_totp, enable_totp, new_totp_secret, totp_uri
from mapsvc.web.auth.cookies import (
    clear_login_cookie,
    cookie_name,
    require_same_origin,
    session_lifetime,
    set_login_cookie,
)
from mapsvc.web.auth.devices import forget_device, remember_device
from mapsvc.web.auth.guessing import begin_sign_in, end_attempt
from mapsvc.web.auth.identity import current_identity
from mapsvc.web.auth.reauth import code_error, fresh_sign_in, fresh_until
from mapsvc.web.auth.redirects import local_path, safe_next

bp = Blueprint("auth", __name__)

Page = tuple[str, int]


def qr_svg(uri: str) -> Markup:
    """Return the otpauth URI as an inline SVG QR code, drawn here (no third-party service)."""
    return Markup(segno.make(uri, error="m").svg_inline(scale=4, title=_("Two-factor set-up code")))


def _signed_in(token: str, pending: bool, target: str) -> Response:
    response = redirect(target, 303)
    g.cookie_set = True
    return set_login_cookie(response, token, session_lifetime(pending))


@bp.get("/login")
def login() -> str | Response:
    """Show the sign-in form (or go on, when already signed in or half-way)."""
    next_path = local_path(request.args.get("next")) or ""
    if g.get("pending_account_id"):
        return redirect(url_for("auth.second_factor", next=next_path), 303)
    if current_identity().account_id is not None:
        return redirect(safe_next(next_path), 303)
    return render_template("auth/login.html", next=next_path, welcome=request.args.get("welcome"))


@bp.post("/login")
def login_submit() -> Page | Response:
    """Check the password; go on to the two-factor step when the account needs one."""
    require_same_origin()
    username, password = request.form.get("username", ""), request.form.get("password", "")
    target = local_path(request.form.get("next")) or ""
    if not username.strip() or not password:
        error = InvalidInput(_("username and password are required"), "username")
        return render_template("auth/login.html", next=target, error=error), error.status
    now, policy = settings().now(), account_policy()
    with get_store().writing() as session:
        if g.get("login_token"):
            close_session(session, g.login_token)
        named = find_account(session, username)  # looked up for a name with no account as for any other
        attempt = begin_sign_in(username, named)
        account = authenticate(named, password, policy, throttled=not attempt.allowed)
        pending = account is not None and needs_second_factor(account, policy)
        fresh = None if pending else fresh_until(now)
        token = open_session(session, account, now, session_lifetime(pending), fresh_until=fresh) if account else None
    end_attempt(attempt, right=account is not None)
    if token is None or account is None:
        error = InvalidInput(
            _(
                "wrong username or password, or too many wrong attempts: wait a while,"
                " or sign in from a browser you signed in from before"
            ),
            "password",
            status=401,
        )
        return render_template("auth/login.html", next=target, error=error), error.status
    destination = url_for("auth.second_factor", next=target) if pending else safe_next(target)
    return remember_device(_signed_in(token, pending, destination), account)


def _pending_account() -> Any:
    account_id = g.get("pending_account_id")
    if account_id is None:
        return None
    with get_store().reader() as session:
        return get_account(session, account_id)


def _second_factor_page(account: Any, error: MapsvcError | None = None, secret: str | None = None) -> Page:
    context: dict[str, Any] = {"next": local_path(request.values.get("next")) or "", "error": error}
    if account.totp_secret is None:
        secret = secret or new_totp_secret()
        uri = totp_uri(secret, account.username)
        context.update(secret=secret, uri=uri, qr=qr_svg(uri))
    return render_template("auth/second_factor.html", **context), (error.status if error else 200)


@bp.get("/login/totp")
def second_factor() -> Page | Response:
    """Ask for the authenticator's code, or set two-factor up where the organisation requires it."""
    account = _pending_account()
    if account is None:
        return redirect(url_for("auth.login"), 303)
    return _second_factor_page(account)


@bp.post("/login/totp")
def second_factor_submit() -> Page | Response:
    """Check the code (or finish the set-up) and complete the sign-in with a new session token."""
    account_id = g.get("pending_account_id")
    if account_id is None:
        return redirect(url_for("auth.login"), 303)
    code, secret = request.form.get("code", ""), request.form.get("secret", "")
    now, policy = settings().now(), totp_policy()
    error: MapsvcError | None = None
    with get_store().writing() as session:
        account = get_account(session, account_id)
        setting_up = account.totp_secret is None
        try:
            if setting_up:
                enable_totp(account, secret, code, now, policy)
                record_action(session, account.username, "totp_enabled", now)
            elif not check_totp(account, code, now, policy):
                error = code_error(account, now, status=401)
        except InvalidInput as exc:
            error = exc
        token = None if error else complete_session(session, g.login_token, now, session_lifetime(), fresh_until(now))
    if token is None:
        return _second_factor_page(account, error, secret if setting_up else None)
    return _signed_in(token, False, safe_next(request.form.get("next")))


@bp.post("/logout")
def logout() -> Response:
    """End this browser's session; with "Forget this browser", delete its device cookie too."""
    forget = bool(request.form.get("forget_browser"))
    if forget:
        require_same_origin()  # another site's form would make the owner's browser a stranger
    if g.get("login_token"):
        with get_store().writing() as session:
            close_session(session, g.login_token)
    response = clear_login_cookie(redirect(url_for("pages.index"), 303))
    return forget_device(response) if forget else response


@bp.post("/login/forget")
def forget_browser() -> Response:
    """Delete this browser's device cookie (the quick exit's beacon: script cannot reach an HttpOnly cookie)."""
    require_same_origin()
    return forget_device(Response(status=204))


@bp.post("/account/logout-everywhere")
def logout_everywhere() -> Response:
    """End every session of this account, on every device."""
    identity = current_identity()
    now = settings().now()
    with get_store().writing() as session:
        closed = sign_out_everywhere(session, identity.account_id or 0)
        record_action(session, identity.username or "", "logout_everywhere", now, detail=f"{closed} sessions")
    return clear_login_cookie(redirect(url_for("auth.login"), 303))


@bp.get("/invite")
def invite_form() -> str:
    """Show the form to paste an invitation code into."""
    return render_template("auth/invite.html", code="", values={})


@bp.get("/invite/<code>")
def invite_link(code: str) -> str:
    """Show the form for an invitation link."""
    return render_template("auth/invite.html", code=code, values={})


@bp.post("/invite")
def invite_submit() -> Page | Response:
    """Make the invited account with the chosen name and password; then sign in."""
    require_same_origin()
    form = request.form
    values = {"username": form.get("username", "")}
    try:
        if form.get("password", "") != form.get("password_repeat", ""):
            raise InvalidInput(_("the two passwords differ"), "password_repeat")
        now = settings().now()
        with get_store().writing() as session:
            account = accept_invitation(
                session, form.get("code", ""), values["username"], form.get("password", ""), now, account_policy()
            )
            record_action(session, account.username, "account_created", now, detail=f"role {account.role}")
    except InvalidInput as error:
        return render_template("auth/invite.html", code=form.get("code", ""), values=values, error=error), error.status
    return remember_device(redirect(url_for("auth.login", welcome=1), 303), account)


def _account_page(error: MapsvcError | None = None) -> Page:
    identity = current_identity()
    with get_store().reader() as session:
        account = get_account(session, identity.account_id or 0)
    policy = account_policy()
    context = {
        "account": account,
        "capabilities": sorted(c.value for c in CAPABILITIES[Role(account.role)]),
        "totp_required": policy.require_staff_totp and Role(account.role) in STAFF_ROLES,
        "done": request.args.get("done"),
        "error": error,
    }
    return render_template("auth/account.html", **context), (error.status if error else 200)


@bp.get("/account")
def account() -> Page:
    """Show one's own account: role, password, two-factor, tokens, signing out."""
    return _account_page()


@bp.post("/account/password")
@fresh_sign_in("auth.account")
def password() -> Page | Response:
    """Change one's own password, after the current one."""
    identity, form = current_identity(), request.form
    try:
        if form.get("new_password", "") != form.get("new_password_repeat", ""):
            raise InvalidInput(_("the two passwords differ"), "new_password_repeat")
        with get_store().writing() as session:
            account = get_account(session, identity.account_id or 0)
            change_password(
                session,
                account,
                form.get("current_password", ""),
                form.get("new_password", ""),
                account_policy(),
                keep=request.cookies.get(cookie_name()),
            )
            record_action(session, account.username, "password_changed", settings().now())
    except InvalidInput as error:
        return _account_page(error)
    return redirect(url_for("auth.account", done="password"), 303)


def _totp_page(secret: str, error: MapsvcError | None = None) -> Page:
    uri = totp_uri(secret, current_identity().username or "")
    page = render_template("auth/totp_setup.html", secret=secret, uri=uri, qr=qr_svg(uri), error=error)
    return page, (error.status if error else 200)


@bp.get("/account/totp")
@fresh_sign_in("auth.totp_setup")
def totp_setup() -> Page:
    """Show a new secret (as text, an otpauth URI and a QR code) to put in an authenticator app."""
    return _totp_page(new_totp_secret())


@bp.post("/account/totp")
@fresh_sign_in("auth.totp_setup")
def totp_enable() -> Page | Response:
    """Turn two-factor on (or replace its secret) once a code shows the authenticator holds the secret."""
    secret, now = request.form.get("secret", ""), settings().now()
    try:
        with get_store().writing() as session:
            account = get_account(session, current_identity().account_id or 0)
            enable_totp(account, secret, request.form.get("code", ""), now, totp_policy())
            mark_second_factor_done(session, g.login_token)
            record_action(session, account.username, "totp_enabled", now)
    except InvalidInput as error:
        return _totp_page(secret if secret.isalnum() else new_totp_secret(), error)
    return redirect(url_for("auth.account", done="totp"), 303)


@bp.post("/account/totp/disable")
@fresh_sign_in("auth.account")
def totp_disable() -> Page | Response:
    """Turn two-factor off with a current code (not allowed where staff must use it)."""
    now, policy = settings().now(), totp_policy()
    error: MapsvcError | None = None
    with get_store().writing() as session:
        account = get_account(session, current_identity().account_id or 0)
        try:
            if not check_totp(account, request.form.get("code", ""), now, policy):
                raise code_error(account, now)
            disable_totp(account, policy)
            record_action(session, account.username, "totp_disabled", now)
        except InvalidInput as exc:
            error = exc
    return _account_page(error) if error else redirect(url_for("auth.account", done="totp_off"), 303)


def _tokens_page(new_token: str | None = None, error: MapsvcError | None = None, status: int = 200) -> Page:
    identity = current_identity()
    with get_store().reader() as session:
        tokens = list_tokens(session, identity.account_id or 0)
    roles = [r for r in Role if r is not Role.ANONYMOUS and role_within(r, identity.role)]
    context = {"tokens": tokens, "roles": roles, "new_token": new_token, "error": error}
    return render_template("auth/tokens.html", **context), (error.status if error else status)


@bp.get("/account/tokens")
def tokens() -> Page:
    """List one's own API tokens, with a form for a new one."""
    return _tokens_page()


@bp.post("/account/tokens")
@fresh_sign_in("auth.tokens")
def token_create() -> Page:
    """Make an API token with a role no higher than one's own; it is shown once."""
    identity, now = current_identity(), settings().now()
    try:
        role = parse_role(request.form.get("role"))
        with get_store().writing() as session:
            owner = get_account(session, identity.account_id or 0)
            token = make_token(session, owner, request.form.get("name", ""), role, now)
            record_action(session, owner.username, "token_made", now, detail=f"{request.form['name']} ({role})")
    except InvalidInput as error:
        return _tokens_page(error=error)
    return _tokens_page(new_token=token, status=201)


@bp.post("/account/tokens/<int:token_id>/revoke")
def token_revoke(token_id: int) -> Response:
    """Revoke one of one's own API tokens."""
    identity = current_identity()
    with get_store().writing() as session:
        token = revoke_token(session, token_id, owner_id=identity.account_id or 0)
        record_action(session, identity.username or "", "token_revoked", settings().now(), detail=token.name)
    return redirect(url_for("auth.tokens"), 303)


@bp.get("/api/me")
def me() -> Response:
    """Say who the request is from: role, username and capabilities (for integrations checking a token)."""
    identity = current_identity()
    body = {
        "role": identity.role.value,
        "username": identity.username,
        "capabilities": sorted(c.value for c in CAPABILITIES[identity.role]),
        "by_token": identity.by_token,
    }
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
