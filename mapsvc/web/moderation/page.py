"""The moderator's page: the queue as cards with big buttons, plain forms that work without JavaScript.

Every form posts to :func:`act_on` with a CSRF token; the page then returns to the queue
(post/redirect/get), so a reload never repeats an action. The rules are the API's:
:func:`mapsvc.web.moderation.api.act`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from mapsvc.core.errors import MapsvcError
from mapsvc.core.events import PublicEvent
from mapsvc.core.geodesy import geodesic_distance_m
from mapsvc.services import parse
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store import moderation as store
from mapsvc.web.mapconfig import symbol
from mapsvc.web.moderation.api import ACTIONS, act, moderator, pending_queue

bp = Blueprint("moderate", __name__, url_prefix="/moderate")


#: Merge candidates offered for a card: same category, at most this far and this much apart.
MERGE_NEAR_M = 2000.0
MERGE_NEAR_TIME = timedelta(days=2)
MERGE_CHOICES = 8


def merge_choices(event: PublicEvent, others: list[PublicEvent]) -> list[PublicEvent]:
    """Return the queue's events that could be the same incident as ``event``, nearest first.

    Same category, within :data:`MERGE_NEAR_M` and :data:`MERGE_NEAR_TIME`: a list of every
    event of the category would make a long queue's page grow with the square of its length.
    """
    near = [
        o
        for o in others
        if o.public_id != event.public_id
        and o.category == event.category
        and abs(o.bucket_start - event.bucket_start) <= MERGE_NEAR_TIME
    ]
    if not near:
        return []
    distances = geodesic_distance_m(
        [event.lat] * len(near), [event.lon] * len(near), [o.lat for o in near], [o.lon for o in near]
    )
    ranked = sorted(zip(distances.tolist(), range(len(near)), strict=True))
    return [near[i] for d, i in ranked if d <= MERGE_NEAR_M][:MERGE_CHOICES]


def _render(items: list[store.QueueItem], single: bool = False, error: MapsvcError | None = None) -> str:
    size = settings().moderation.page_size
    pages = max(1, -(-len(items) // size))
    page = 1 if single else min(max(parse.integer(request.args.get("page"), "page", 1, 1, 10_000), 1), pages)
    shown = items[(page - 1) * size : page * size]
    events = [i.event for i in items]
    return render_template(
        "moderate/queue.html",
        items=shown,
        merges={i.event.public_id: merge_choices(i.event, events) for i in shown},
        page=page,
        pages=pages,
        single=single,
        error=error,
        done=request.args.get("done") if request.args.get("done") in ACTIONS else None,
        categories=list(settings().policies),
        symbol=symbol,
        timezone=settings().timezone,
    )


@bp.get("/")
def queue() -> str:
    """Show the queue: pending events oldest first, then recent unverified ones."""
    moderator()
    return _render(pending_queue())


@bp.get("/events/<event_id>")
def event(event_id: str) -> str:
    """Show one event whatever its state (a merged event leaves the queue, and may need a split)."""
    moderator()
    with get_store().reader() as session:
        found = store.event(session, event_id)
    return _render([found], single=True)


def _form_data(action: str) -> dict[str, Any]:
    """Return the action's argument from the form, shaped as the API's JSON body."""
    if action == "split":
        return {"reports": request.form.getlist("reports")}
    field = ACTIONS[action][1]
    return {} if field is None else {field: request.form.get(field, "")}


@bp.post("/events/<event_id>")
def act_on(event_id: str) -> Response | tuple[str, int]:
    """Apply the action of the button pressed, then return to where the moderator was."""
    action = request.form.get("action", "")
    if action not in ACTIONS:
        return _render(pending_queue(), error=MapsvcError(_("unknown action"), "action")), 400
    try:
        result = act(action, event_id, _form_data(action))
    except MapsvcError as error:
        return _render(pending_queue(), error=error), error.status
    if action in ("split", "merge") or request.form.get("back") == "event":
        return redirect(url_for("moderate.event", event_id=result.event.public_id, done=action), 303)
    return redirect(url_for("moderate.queue", done=action), 303)
