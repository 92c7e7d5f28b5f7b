"""Roles and what each may do: the one list the permission table and the pages read.

A role is a word a person of the organisation would use. Capabilities are what the views check;
the table of endpoints (``mapsvc.web.hooks.permissions``) says which capability each endpoint needs.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Who is asking: anonymous visitors have no account; the others are invited."""

    ANONYMOUS = "anonymous"
    PEER = "peer"  # trusted peer
    MODERATOR = "moderator"
    PLANNER = "planner"
    ADVOCATE = "advocate"
    ADMIN = "admin"


class Capability(StrEnum):
    """One thing a role may do."""

    VIEW_MAP = "view_map"  # the public map, layers, heat, categories
    REPORT = "report"  # send and withdraw reports
    SEE_SINGLE_EVENTS = "see_single_events"  # events the public sees only as heat
    TRUSTED_REPORTS = "trusted_reports"  # own reports count as verified
    MODERATE = "moderate"  # the queue: approve, reject, verify, recategorise, merge, split
    PLAN_ROUTES = "plan_routes"  # the planner page and routing API
    ADVOCACY = "advocacy"  # hotspots, charts, exports
    MANAGE_ACCOUNTS = "manage_accounts"  # invitations, accounts, API tokens of others
    READ_AUDIT = "read_audit"  # the staff audit log
    OWN_ACCOUNT = "own_account"  # change own password, two-factor, log out everywhere, own tokens


_EVERYONE = {Capability.VIEW_MAP, Capability.REPORT}
_SIGNED_IN = _EVERYONE | {Capability.OWN_ACCOUNT}
_TRUSTED = _SIGNED_IN | {Capability.SEE_SINGLE_EVENTS, Capability.TRUSTED_REPORTS}

CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.ANONYMOUS: frozenset(_EVERYONE),
    Role.PEER: frozenset(_TRUSTED),
    Role.MODERATOR: frozenset(_TRUSTED | {Capability.MODERATE}),
    Role.PLANNER: frozenset(_TRUSTED | {Capability.PLAN_ROUTES}),
    Role.ADVOCATE: frozenset(_SIGNED_IN | {Capability.ADVOCACY}),
    Role.ADMIN: frozenset(Capability),
}

#: Roles that must use two-factor sign-in when the organisation turns it on for staff.
STAFF_ROLES = frozenset({Role.MODERATOR, Role.PLANNER, Role.ADVOCATE, Role.ADMIN})


def can(role: Role, capability: Capability) -> bool:
    """Return whether ``role`` has ``capability``."""
    return capability in CAPABILITIES[role]
