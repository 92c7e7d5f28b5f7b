"""Schemas of values that several OpenAPI descriptions share, with the limits :mod:`mapsvc.services.parse` enforces."""

from __future__ import annotations

from typing import Any

from mapsvc.services.parse import YEARS

#: What no text anywhere in a request may hold, said once in each document's description (a pattern on
#: every string would say it too, and make every string's schema harder to read and to test).
NO_NUL = (
    "No text anywhere in a request (the path, the query, a form, a JSON body's keys and strings) may hold "
    "NUL or a lone surrogate, which no database text can: such a request is answered 400, naming the field."
)


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
