"""The moderation API: the queue, and one POST per action on an event.

Every endpoint here needs ``Capability.MODERATE`` (see :mod:`mapsvc.web.hooks.permissions`); the
moderator's username is what the audit log keeps. The moderator page calls the same
:func:`act`, so the API and the plain forms apply exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response
from flask_babel import gettext as _

from mapsvc.core.errors import Forbidden, InvalidInput
from mapsvc.core.moments import iso
from mapsvc.core.roles import Capability
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store import moderation as store
from mapsvc.web.auth.identity import current_identity
from mapsvc.web.hooks import inputs
from mapsvc.web.readcache import forget_answers
from mapsvc.web.responses import json_response

bp = Blueprint("moderation", __name__, url_prefix="/api/moderation")

#: Each action's store function, and the body field it needs besides the event (if any).
ACTIONS: dict[str, tuple[Callable[..., store.QueueItem], str | None]] = {
    "approve": (store.approve, None),
    "reject": (store.reject, None),
    "verify": (store.verify, None),
    "category": (store.change_category, "category"),
    "merge": (store.merge, "other"),
    "split": (store.split, "reports"),
}


def moderator() -> store.Moderator:
    """Return who acts now; refuse anyone without the moderate capability (the table checks first)."""
    identity = current_identity()
    if not identity.can(Capability.MODERATE) or not identity.username:
        raise Forbidden(_("moderators only"))
    s = settings()
    return store.Moderator(identity.username, s.now(), s.policies)


def _argument(field: str, data: Mapping[str, Any]) -> Any:
    """Return an action's argument from the body, checked for its type."""
    value = data.get(field)
    if field == "reports":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(_("reports must be a list of report ids"), "reports")
        return value
    if not isinstance(value, str) or not value:
        raise InvalidInput(_("%(field)s is required", field=field), field)
    return value


def act(action: str, event_id: str, data: Mapping[str, Any]) -> store.QueueItem:
    """Apply one moderation action in one write transaction; return the event it leaves."""
    who = moderator()
    function, field = ACTIONS[action]
    arguments = [] if field is None else [_argument(field, data)]
    with get_store().writing() as session:
        event = function(session, who, event_id, *arguments)
    forget_answers()  # what the public map shows changed: at once for this moderator (mapsvc.web.readcache)
    return event


def event_body(item: store.QueueItem) -> dict[str, Any]:
    """Return an event of the queue as JSON: its public shape, with what only staff see."""
    e = item.event
    return {
        "id": e.public_id,
        "category": e.category,
        "perpetrator": e.perpetrator,
        "lat": e.lat,
        "lon": e.lon,
        "bucket_start": iso(e.bucket_start),
        "corroborations": e.corroborations,
        "status": item.status,
        "trust": e.trust,
        "held_reason": item.held_reason,
        "details": item.details,
        "reports": [{"id": r.id, "trusted": r.trusted} for r in item.reports],
    }


def pending_queue() -> list[store.QueueItem]:
    """Return the queue: pending events, oldest first, then recent unverified published ones."""
    s = settings()
    with get_store().reader() as session:
        return store.queue(session, s.now(), s.moderation.recent)


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/queue")
def queue() -> Response:
    """List the events that wait for a moderator, then recent unverified ones."""
    moderator()
    return _private(json_response({"events": [event_body(e) for e in pending_queue()]}))


@bp.get("/events/<event_id>")
def event(event_id: str) -> Response:
    """Show one event, whatever its state, with its reports (to split a merge that left the queue)."""
    moderator()
    with get_store().reader() as session:
        found = store.event(session, event_id)
    return _private(json_response(event_body(found)))


def _post(action: str, event_id: str, status: int = 200) -> Response:
    data = inputs.json_object(optional=ACTIONS[action][1] is None)
    return _private(json_response(event_body(act(action, event_id, data)), status))


@bp.post("/events/<event_id>/approve")
def approve(event_id: str) -> Response:
    """Publish a pending (or wrongly rejected) event."""
    return _post("approve", event_id)


@bp.post("/events/<event_id>/reject")
def reject(event_id: str) -> Response:
    """Reject an event: it leaves the layers and the heat at once."""
    return _post("reject", event_id)


@bp.post("/events/<event_id>/verify")
def verify(event_id: str) -> Response:
    """Mark an event verified (publishing it if it was pending)."""
    return _post("verify", event_id)


@bp.post("/events/<event_id>/category")
def change_category(event_id: str) -> Response:
    """Move an event to another category."""
    return _post("category", event_id)


@bp.post("/events/<event_id>/merge")
def merge(event_id: str) -> Response:
    """Merge another event into this one."""
    return _post("merge", event_id)


@bp.post("/events/<event_id>/split")
def split(event_id: str) -> Response:
    """Move some of the event's reports to a new event; answer with the new event."""
    return _post("split", event_id, 201)
