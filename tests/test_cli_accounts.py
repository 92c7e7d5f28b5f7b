"""``mapsvc admin``: the first admin and invitations from the command line; the address key's salt."""

from __future__ import annotations

import re

from sqlalchemy import select

from mapsvc.store.models import Account, AuditEntry

GOOD = "a good long password 9"


def _accounts(app) -> list[tuple[str, str]]:
    with app.extensions["mapsvc.store"].reader() as session:
        return [(a.username, a.role) for a in session.scalars(select(Account))]


def test_admin_create_reads_the_password_from_stdin(app, runner, client):
    result = runner.invoke(args=["admin", "create", "Boss", "--password-stdin"], input=GOOD + "\n")

    assert result.exit_code == 0, result.output
    assert _accounts(app) == [("boss", "admin")]
    assert client.post("/login", data={"username": "boss", "password": GOOD}).status_code == 303


def test_admin_create_asks_twice_for_the_password(app, runner):
    result = runner.invoke(args=["admin", "create", "boss"], input=f"{GOOD}\n{GOOD}\n")

    assert result.exit_code == 0, result.output
    assert GOOD not in result.output
    assert _accounts(app) == [("boss", "admin")]


def test_admin_create_refuses_a_second_admin_without_force(app, runner):
    runner.invoke(args=["admin", "create", "boss", "--password-stdin"], input=GOOD)

    refused = runner.invoke(args=["admin", "create", "deputy", "--password-stdin"], input=GOOD)
    forced = runner.invoke(args=["admin", "create", "deputy", "--password-stdin", "--force"], input=GOOD)

    assert refused.exit_code == 1 and "--force" in refused.output
    assert forced.exit_code == 0
    assert sorted(_accounts(app)) == [("boss", "admin"), ("deputy", "admin")]


def test_admin_create_names_a_bad_password(app, runner):
    result = runner.invoke(args=["admin", "create", "boss", "--password-stdin"], input="short\n")

    assert result.exit_code == 1
    assert "password must be 12 to 256 characters long" in result.output
    assert _accounts(app) == []


def test_admin_invite_prints_a_working_code_and_link(app, runner, client):
    result = runner.invoke(args=["admin", "invite", "--role", "peer", "--days", "2"])
    code = re.search(r"code: (\S+)", result.output).group(1)
    form = {"code": code, "username": "river", "password": GOOD, "password_repeat": GOOD}

    assert result.exit_code == 0
    assert f"link: /invite/{code}" in result.output
    assert client.post("/invite", data=form).status_code == 303
    assert _accounts(app) == [("river", "peer")]
    with app.extensions["mapsvc.store"].reader() as session:
        assert [e.action for e in session.scalars(select(AuditEntry))] == ["invitation_made", "account_created"]


def test_admin_invite_refuses_an_unknown_role(runner):
    result = runner.invoke(args=["admin", "invite", "--role", "anonymous"])

    assert result.exit_code == 2
