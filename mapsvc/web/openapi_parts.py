"""The parts the OpenAPI fragments of the JSON API are built from, so that each says them the same way.

Answers: the ``Error`` schema, what each error status means, JSON bodies by reference. Values:
those several fragments read, with the limits :mod:`mapsvc.services.parse` enforces.
:mod:`mapsvc.web.openapi` assembles the document from the features' fragments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mapsvc.services.parse import YEARS

#: The body of every error answer: what went wrong and, where there is one, the field.
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
}

#: What each error status of the API means; every operation lists those it can answer.
ERROR_TEXTS = {
    400: "Malformed request: a query parameter is invalid, or the body is not JSON, not an object, nested too "
    "deeply, or holds a NUL character or a lone surrogate; the answer names the field where there is one",
    401: "The Authorization header is malformed, or its API token is unknown or revoked",
    404: "Not found",
    413: "Body too large (MAX_CONTENT_LENGTH bytes, sent chunked or not)",
    415: "The body is not sent as application/json",
    422: "A field failed its checks; the answer names it",
    429: "Too many requests from this address; retry after the Retry-After seconds",
    503: "The database is unreachable or busy; retry after the Retry-After seconds",
}

#: The texts of the operations that need an account (a signed-in session or an API token) and read a JSON body.
ACCOUNT_ERROR_TEXTS = {
    **ERROR_TEXTS,
    400: "Malformed request: the body is not JSON, not an object, or holds a NUL character or a lone surrogate",
    401: "Not signed in: sign in or send an API token",
    413: "Body too large",
}


def ref(schema: str) -> dict[str, Any]:
    """Return a reference to the component schema named ``schema``."""
    return {"$ref": f"#/components/schemas/{schema}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    """Return the ``content`` of a JSON body of ``schema``."""
    return {"application/json": {"schema": schema}}


def json_answer(description: str, schema: str) -> dict[str, Any]:
    """Return an answer whose JSON body is the component schema named ``schema``."""
    return {"description": description, "content": json_content(ref(schema))}


def error_responses(*codes: int, texts: Mapping[int, str] = ERROR_TEXTS) -> dict[str, Any]:
    """Return the documented error answers: ``codes``, and those of every operation: 401 (a bad token), 503.

    ``texts`` says what each status means where the operation's feature says it more precisely.
    """
    return {
        str(code): {"description": texts[code], "content": json_content(ref("Error"))}
        for code in sorted({*codes, 401, 503})
    }


#: What no text anywhere in a request may hold, said once in each document's description (a pattern on
#: every string would say it too, and make every string's schema harder to read and to test).
NO_NUL = (
    "No text anywhere in a request (the path, the query, a form, a JSON body's keys and strings) may hold "
    "NUL or a lone surrogate, which no database text can: such a request is answered 400, naming the field."
)

#: A latitude and a longitude in WGS84 degrees, as :func:`mapsvc.services.parse.coordinate` is asked to check them.
LATITUDE = {"type": "number", "minimum": -90, "maximum": 90}
LONGITUDE = {"type": "number", "minimum": -180, "maximum": 180}


def moment(description: str) -> dict[str, Any]:
    """Return the schema of a date-time the API reads: ISO 8601, written in the years ``parse.YEARS`` allows.

    The years are said in words: as a pattern besides the format, they made the schema several times
    slower to generate cases from, for a rule the windows in the descriptions are tighter than anyway.
    """
    first, last = YEARS
    return {
        "type": "string",
        "format": "date-time",
        "description": f"{description}. Written in the years {first} to {last}; without an offset, in the "
        "service's time zone",
    }
