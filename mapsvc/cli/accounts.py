"""``mapsvc admin``: the first admin account and invitations; ``mapsvc accounts``: sealing TOTP secrets."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from mapsvc.cli.maintenance import require_current_schema
from mapsvc.core.errors import MapsvcError
from mapsvc.core.roles import Role
from mapsvc.services.accounts import account_policy
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.accounts import create_account, has_admin, make_invitation
from mapsvc.store.audit import record_action
from mapsvc.store.totp import SecretBox, seal_all, secrets_problem

admin_group = click.Group("admin", help="Accounts: the first admin, and invitations.")
accounts_group = click.Group("accounts", help="Accounts' stored secrets.")

#: Who the audit log names for actions taken on the command line.
CLI_ACTOR = "(command line)"
ACCOUNT_ROLES = [r.value for r in Role if r is not Role.ANONYMOUS]


def _password(from_stdin: bool) -> str:
    """Read the password from standard input (one line) or ask for it twice, hidden."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@admin_group.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of a prompt.")
@click.option("--force", is_flag=True, help="Make another admin even though one exists.")
@with_appcontext
def admin_create(username: str, password_stdin: bool, force: bool) -> None:
    """Make an admin account (the first one; later accounts come from invitations)."""
    require_current_schema()
    password = _password(password_stdin)
    now = settings().now()
    try:
        with get_store().writing() as session:
            if has_admin(session) and not force:
                raise click.ClickException("an admin account exists already; use --force to make another")
            account = create_account(session, username, password, Role.ADMIN, now, account_policy())
            record_action(session, CLI_ACTOR, "account_created", now, detail=f"admin {account.username}")
    except MapsvcError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"admin account {account.username} made; sign in at /login")


@admin_group.command("invite")
@click.option("--role", required=True, type=click.Choice(ACCOUNT_ROLES), help="The invited account's role.")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 365), help="Days until it expires.")
@with_appcontext
def admin_invite(role: str, days: int) -> None:
    """Make an invitation and print its code and link path (shown only now)."""
    require_current_schema()
    now = settings().now()
    try:
        with get_store().writing() as session:
            code = make_invitation(session, Role(role), days, now, None, settings().accounts.invitation_max_days)
            record_action(session, CLI_ACTOR, "invitation_made", now, detail=f"role {role}, {days} days")
    except MapsvcError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"invitation for a {role}, valid {days} days (shown only now)")
    click.echo(f"code: {code}")
    click.echo(f"link: /invite/{code}")


@accounts_group.command("encrypt-secrets")
@with_appcontext
def accounts_encrypt_secrets() -> None:
    """Seal every TOTP secret with TOTP_ENCRYPTION_KEY: plain ones (from before 0009) and older keys' ones."""
    require_current_schema()
    box: SecretBox | None = current_app.extensions["mapsvc.totp_box"]
    if box is None:
        raise click.ClickException("TOTP_ENCRYPTION_KEY is not set; see docs/accounts.md (Two-factor)")
    with get_store().writing() as session:
        sealed, unreadable = seal_all(session, box)
    click.echo(f"{sealed} TOTP secrets sealed with the current key")
    if unreadable:
        raise click.ClickException(f"{unreadable} TOTP secrets open with none of the configured keys; left as they are")


def require_usable_secrets() -> None:
    """Stop with a clear message when the TOTP key is missing or wrong for the stored secrets."""
    with get_store().reader() as session:
        problem = secrets_problem(
            session, current_app.extensions["mapsvc.totp_box"], settings().accounts.require_staff_totp
        )
    if problem:
        raise click.ClickException(problem)
