"""The moderation API's part of the OpenAPI document (assembled in :mod:`mapsvc.web.openapi`)."""

from __future__ import annotations

from typing import Any

from mapsvc.core.policy import PERPETRATORS
from mapsvc.core.trust import Hold, Status, Trust
from mapsvc.settings import Settings
from mapsvc.web.openapi_parts import ACCOUNT_ERROR_TEXTS, error_responses, json_answer, json_content, ref

_TEXTS = {
    **ACCOUNT_ERROR_TEXTS,
    403: "The role may not moderate, or the CSRF token is missing or wrong",
    404: "No event with that id",
    409: "Impossible in the event's current state (for example approving a published event)",
}

#: Moderation needs an account that may moderate: an API token here, or a signed-in session with its CSRF token.
_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


_EVENT_ID = {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _action(summary: str, body: dict[str, Any] | None = None, created: bool = False) -> dict[str, Any]:
    """Return the POST operation of one moderation action."""
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["moderation"],
        "security": _SECURITY,
        "parameters": [_EVENT_ID],
        "responses": {
            ("201" if created else "200"): json_answer(
                "The event the action leaves (for a split: the new one)", "ModeratedEvent"
            ),
            **error_responses(400, 403, 404, 409, 413, 415, 422, texts=_TEXTS),
        },
    }
    # An action without a field takes no body; one sent must still be a JSON object.
    schema = body if body is not None else {"type": "object", "additionalProperties": False}
    operation["requestBody"] = {"required": body is not None, "content": json_content(schema)}
    return {"post": operation}


def _one_field(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [name], "properties": {name: schema}, "additionalProperties": False}


def _getter(summary: str, answer: dict[str, Any], *errors: int, parameters: list[Any] | None = None) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "tags": ["moderation"],
            "security": _SECURITY,
            **({"parameters": parameters} if parameters else {}),
            "responses": {"200": answer, **error_responses(*errors, texts=_TEXTS)},
        }
    }


def paths(settings: Settings) -> dict[str, Any]:
    """Return the moderation API's paths."""
    categories = list(settings.policies)
    return {
        "/api/moderation/queue": _getter(
            "Pending events, oldest first; then recent published unverified ones, newest first",
            json_answer("The queue", "ModerationQueue"),
            403,
        ),
        "/api/moderation/events/{event_id}": _getter(
            "One event, whatever its state, with its reports",
            json_answer("The event", "ModeratedEvent"),
            403,
            404,
            parameters=[_EVENT_ID],
        ),
        "/api/moderation/events/{event_id}/approve": _action("Publish a pending (or wrongly rejected) event"),
        "/api/moderation/events/{event_id}/reject": _action(
            "Reject an event: it leaves layers and heat at once, and new reports never merge into it"
        ),
        "/api/moderation/events/{event_id}/verify": _action("Mark an event verified; a pending one is published too"),
        "/api/moderation/events/{event_id}/category": _action(
            "Move an event to another category; its time bucket is re-cut to the category's",
            _one_field("category", {"enum": categories}),
        ),
        "/api/moderation/events/{event_id}/merge": _action(
            "Merge another event (of the same category) into this one, which keeps its point and bucket",
            _one_field(
                "other",
                {"type": "string", "minLength": 1, "description": "the id of the event absorbed: another event"},
            ),
        ),
        "/api/moderation/events/{event_id}/split": _action(
            "Move some of the event's reports to a new event at the same point, bucket and category",
            _one_field(
                "reports",
                {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "uniqueItems": True,
                    "description": "ids of the event's reports, not all of them",
                },
            ),
            created=True,
        ),
    }


def schemas(settings: Settings) -> dict[str, Any]:
    """Return the schemas the moderation paths refer to."""
    return {
        "ModerationQueue": {
            "type": "object",
            "required": ["events"],
            "properties": {"events": {"type": "array", "items": ref("ModeratedEvent")}},
        },
        "ModeratedEvent": {
            "type": "object",
            "required": [
                "id",
                "category",
                "perpetrator",
                "lat",
                "lon",
                "bucket_start",
                "corroborations",
                "status",
                "trust",
                "held_reason",
                "details",
                "reports",
            ],
            "properties": {
                "id": {"type": "string"},
                "category": {"enum": list(settings.policies)},
                "perpetrator": {"enum": list(PERPETRATORS)},
                "lat": {"type": "number"},
                "lon": {"type": "number"},
                "bucket_start": {"type": "string", "format": "date-time"},
                "corroborations": {"type": "integer", "minimum": 1},
                "status": {"enum": [s.value for s in Status]},
                "trust": {"enum": [t.value for t in Trust]},
                "held_reason": {"enum": [*(h.value for h in Hold), None]},
                "details": {"type": ["string", "null"]},
                "reports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "trusted"],
                        "properties": {"id": {"type": "string"}, "trusted": {"type": "boolean"}},
                    },
                },
            },
        },
    }
