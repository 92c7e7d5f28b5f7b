"""The OpenAPI 3.1 document of the JSON API, assembled from the fragments its features keep beside their views.

Each feature's ``openapi`` module says its paths and the component schemas they refer to; the parts
they share (the error answers, the values several read) are in :mod:`mapsvc.web.openapi_parts`.
Tests check real responses against the document, and fuzz the app against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from mapsvc.settings import Settings
from mapsvc.web.auth import openapi as auth
from mapsvc.web.map import openapi as public_map
from mapsvc.web.moderation import openapi as moderation
from mapsvc.web.openapi_parts import ERROR, NO_NUL
from mapsvc.web.planner import openapi as planner


class Fragment(Protocol):
    """What a feature's ``openapi`` module offers: its paths, and the component schemas they refer to."""

    def paths(self, settings: Settings) -> dict[str, Any]: ...  # noqa: D102

    def schemas(self, settings: Settings) -> dict[str, Any]: ...  # noqa: D102


#: The features with a part in the JSON API, in the document's order.
FRAGMENTS: tuple[Fragment, ...] = (public_map, auth, moderation, planner)


def openapi_document(settings: Settings) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for the configured categories and limits."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mapsvc",
            "version": "1",
            "description": "Community reports of police raids, checkpoints and attacks as a privacy-safe, "
            "time-decaying danger map. Every location is fuzzed before it is stored. " + NO_NUL,
        },
        "paths": _joined("path", (fragment.paths(settings) for fragment in FRAGMENTS)),
        "security": auth.SECURITY,
        "components": {
            "securitySchemes": auth.security_schemes(),
            "schemas": _joined("schema", [{"Error": ERROR}, *(fragment.schemas(settings) for fragment in FRAGMENTS)]),
        },
    }


def _joined(what: str, parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Return the union of the features' ``parts``, in order; two may not name the same path or schema."""
    joined: dict[str, Any] = {}
    for part in parts:
        if twice := joined.keys() & part.keys():
            raise ValueError(f"more than one feature describes the {what} {', '.join(sorted(twice))}")
        joined.update(part)
    return joined
