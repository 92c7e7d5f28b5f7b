"""The OpenAPI parts about who is asking: the Bearer API token scheme and ``/api/me``."""

from __future__ import annotations

from typing import Any

from mapsvc.core.roles import Capability, Role
from mapsvc.settings import Settings
from mapsvc.web.openapi_parts import ERROR_TEXTS, error_responses, json_content

#: Anonymous requests are welcome on the public endpoints; an API token adds its role's capabilities.
SECURITY: list[dict[str, list[str]]] = [{}, {"bearerAuth": []}]


def security_schemes() -> dict[str, Any]:
    """Return the components' security schemes: API tokens sent as ``Authorization: Bearer``."""
    return {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token made on the account page (/account/tokens), scoped to a role no higher "
            "than its owner's and revocable. Accepted on /api/ paths only. A missing capability answers 403; "
            "an unknown or revoked token 401. Requests with a token need no CSRF token.",
        }
    }


#: What /api/me's errors mean: its token is looked up in the database.
_TEXTS = {
    **ERROR_TEXTS,
    401: "The Authorization header is malformed, or its token unknown or revoked",
    503: "The database is unreachable or busy (a token is looked up in it)",
}


def paths(settings: Settings) -> dict[str, Any]:
    """Return the paths about who is asking."""
    return {
        "/api/me": {
            "get": {
                "summary": "Who the request is from: role, username and capabilities (to check an API token)",
                "responses": {
                    "200": {
                        "description": "The requester; anonymous without a token",
                        "content": json_content(
                            {
                                "type": "object",
                                "required": ["role", "username", "capabilities", "by_token"],
                                "properties": {
                                    "role": {"enum": [r.value for r in Role]},
                                    "username": {"type": ["string", "null"]},
                                    "capabilities": {"type": "array", "items": {"enum": [c.value for c in Capability]}},
                                    "by_token": {"type": "boolean"},
                                },
                            }
                        ),
                    },
                    **error_responses(texts=_TEXTS),
                },
            }
        }
    }


def schemas(settings: Settings) -> dict[str, Any]:
    """Return the component schemas of these paths: none, the answer is described in place."""
    return {}
