"""Who is asking: the signed-in account (cookie session or API token) or an anonymous visitor."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g

from mapsvc.core.roles import Capability, Role, can


@dataclass(frozen=True)
class Identity:
    """The requester as the views see it: a role and, when signed in, a username and account id."""

    role: Role = Role.ANONYMOUS
    username: str | None = None
    account_id: int | None = None
    #: Signed in by an ``Authorization: Bearer`` API token rather than a session cookie.
    by_token: bool = False

    @property
    def actor(self) -> str:
        """Return the name the staff audit log records for this requester's actions."""
        return self.username or ""

    def can(self, capability: Capability) -> bool:
        """Return whether this requester has ``capability``."""
        return can(self.role, capability)


ANONYMOUS = Identity()


def current_identity() -> Identity:
    """Return the identity the authentication hook set for this request (anonymous by default)."""
    identity: Identity = g.get("identity", ANONYMOUS)
    return identity
