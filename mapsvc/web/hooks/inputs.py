"""A request's input before any view reads it: JSON bodies, and no character that cannot be stored.

A JSON body is refused with the reason a client can act on: 415 for another content type, 413
for one over ``MAX_CONTENT_LENGTH`` (chunked ones too), 400 for text that is not JSON or is
nested deeper than the parser goes. No string anywhere in the input (a JSON body, the query, a
form, the path) may hold NUL, which PostgreSQL's text cannot, or a lone surrogate, which no UTF-8
text can (only JSON's escapes make one): either would fail in the database or in the answer
that repeats a field's name, long after the view checked the value's meaning. A bad query
parameter answers 400 (:func:`query_parameters`), a bad field of a body 422.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import request
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from mapsvc.core.errors import InvalidInput, MapsvcError

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> bool:
    """Return whether ``text`` holds NUL or a lone surrogate."""
    return _UNSTORABLE.search(text) is not None


@contextmanager
def query_parameters() -> Iterator[None]:
    """Answer a bad query parameter with 400, as the API documents and OGC API – Features asks.

    The parsers (:mod:`mapsvc.services.parse`) raise :class:`InvalidInput`, 422: the status of a
    bad field in a body (a report's). The same problem in a query parameter is raised again as a
    copy with 400 (:meth:`MapsvcError.with_status`).
    """
    try:
        yield
    except InvalidInput as error:
        raise error.with_status(400) from error


def body() -> bytes:
    """Return the request's body; 413 when it exceeds ``MAX_CONTENT_LENGTH``, sent chunked or not.

    Werkzeug refuses a body whose Content-Length is too large, but cuts a chunked one at the
    limit and returns what it read: a JSON body would then be "not JSON" instead of too large.
    Like Werkzeug's own form parser, a chunked body of exactly the limit counts as too large.
    """
    data = request.get_data()
    limit = request.max_content_length
    if limit is not None and request.content_length is None and len(data) >= limit:
        raise RequestEntityTooLarge()
    return data


def json_body(*, optional: bool = False) -> Any:
    """Return the request's JSON body (``optional``: None when there is no body at all)."""
    data = body()
    if optional and not data:
        return None
    if not request.is_json:
        raise MapsvcError(_("the body must be JSON, sent with the content type application/json"), status=415)
    return loads(data)


def loads(data: bytes | str, field: str | None = None) -> Any:
    """Return parsed JSON text (the body, or the form field ``field``); 400 for what is not JSON."""
    try:
        value = json.loads(data)
    except RecursionError:
        message = _("%(field)s is nested too deeply", field=field) if field else _("the body is nested too deeply")
        raise InvalidInput(message, field, status=None if field else 400) from None
    except ValueError:  # not JSON, not UTF-8, or a number of more than 4,300 digits
        message = _("%(field)s is not valid JSON", field=field) if field else _("the body is not valid JSON")
        raise InvalidInput(message, field, status=None if field else 400) from None
    _refuse_unstorable(_strings(value, field or ""))
    return value


def json_object(*, optional: bool = False) -> dict[str, Any]:
    """Return the request's body, which must be a JSON object (``optional``: {} when there is no body)."""
    value = json_body(optional=optional)
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(_("the body must be a JSON object"), status=400)
    return value


def _strings(value: Any, root: str = "") -> Iterator[tuple[str, str]]:
    """Yield every string of a parsed JSON value (keys too) with the field it is, or is in.

    Iterative: a body nested nearly as deep as the parser allows must not exceed the stack here.
    """
    stack: list[tuple[str, Any]] = [(root, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            yield path or "body", item
        elif isinstance(item, dict):
            for key, child in item.items():
                yield path or "body", key
                # A key that cannot be stored is refused before it names a field.
                stack.append((f"{path}.{key}" if path else key, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))


def _refuse_unstorable(strings: Iterable[tuple[str, str]]) -> None:
    """Refuse (400) the first text that holds NUL or a lone surrogate, naming its field."""
    for field, text in strings:
        if unstorable(text):
            # The field's name may itself be what is refused: name the field that holds it.
            name = field if not unstorable(field) else "body"
            raise InvalidInput(
                _("%(field)s holds a NUL character or a lone surrogate, which no text may hold", field=name),
                name,
                status=400,
            )


def refuse_unstorable_parameters() -> None:
    """Refuse NUL in the path, the query or a form, before any view or store sees it (400)."""
    if "\x00" in request.path:
        raise InvalidInput(_("the address holds a NUL character"), "path", status=400)
    _refuse_unstorable(_parameters())


def _parameters() -> Iterator[tuple[str, str]]:
    for name, value in request.args.items(multi=True):
        yield "query", name
        yield name, value
    if request.method != "GET" and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for name, value in request.form.items(multi=True):
            yield "form", name
            yield name, value
