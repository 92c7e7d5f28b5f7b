"""The one error type that reaches users: an HTTP status and a message naming the problem."""

from __future__ import annotations

import copy
from typing import Self


class MapsvcError(Exception):
    """An input or state problem a client can fix, with a message safe to show and log.

    Messages name the field and the rule; they never repeat coordinates or report text.
    """

    status = 400

    def __init__(self, message: str, field: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status

    def to_dict(self) -> dict[str, str]:
        """Return the JSON body of the error response: every error answered as JSON has this body."""
        body = {"error": self.message}
        if self.field:
            body["field"] = self.field
        return body

    def with_status(self, status: int) -> Self:
        """Return a copy of this error answered with ``status``; this one stays as it was raised.

        Where a status depends on where the input came from rather than on what was wrong with it:
        a bad query parameter answers 400, a bad field of a report's body 422
        (:func:`mapsvc.web.hooks.inputs.query_parameters`).
        """
        changed = copy.copy(self)
        changed.status = status
        return changed


class InvalidInput(MapsvcError):
    """A request field is missing, malformed or out of range."""

    status = 422


class NotFound(MapsvcError):
    """The thing asked for does not exist (or the caller may not know that it does)."""

    status = 404


class SignInRequired(MapsvcError):
    """The request needs an account (or a valid API token) and has none."""

    status = 401


class Forbidden(MapsvcError):
    """The requester is known but may not do this (a role without the capability, a bad CSRF token)."""

    status = 403


class Conflict(MapsvcError):
    """The thing asked for cannot be done in the current state (an impossible transition)."""

    status = 409
