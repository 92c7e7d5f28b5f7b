"""The OpenAPI parts about who is asking: the Bearer API token scheme and ``/api/me``."""

from __future__ import annotations

from typing import Any

from mapsvc.core.roles import Capability, Role

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


def accounts_paths() -> dict[str, Any]:
    """Return the paths this part adds."""
    return {
        "/api/me": {
            "get": {
                "summary": "Who the request is from: role, username and capabilities (to check an API token)",
                "responses": {
                    "200": {
                        "description": "The requester; anonymous without a token",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["role", "username", "capabilities", "by_token"],
                                    "properties": {
                                        "role": {"enum": [r.value for r in Role]},
                                        "username": {"type": ["string", "null"]},
                                        "capabilities": {
                                            "type": "array",
                                            "items": {"enum": [c.value for c in Capability]},
                                        },
                                        "by_token": {"type": "boolean"},
                                    },
                                }
                            }
                        },
                    },
                    "401": {
                        "description": "The Authorization header is malformed, or its token unknown or revoked",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                    "503": {
                        "description": "The database is unreachable or busy (a token is looked up in it)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                },
            }
        }
    }
