"""Query parameters of the OGC API – Features endpoints: checked, and answered 400 when bad.

OGC API – Features Part 1 asks for 400 on an unknown parameter or an invalid value
(requirements /req/core/query-param-unknown and /req/core/query-param-invalid). Messages name
the parameter and never repeat its value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask_babel import gettext as _

from mapsvc.core.errors import InvalidInput
from mapsvc.services import parse
from mapsvc.web.hooks.inputs import query_parameters

#: Parameters every OGC endpoint accepts: the format, and the page language (as elsewhere).
COMMON = frozenset({"f", "lang"})
#: Parameters of the items endpoint.
ITEMS = COMMON | {"bbox", "datetime", "limit", "offset"}

#: The largest ``offset`` accepted.
OFFSET_MAX = 10**9

#: The open end of an interval, in either spelling the standard allows.
OPEN = ("", "..")


def check_known(args: Iterable[str], allowed: frozenset[str]) -> None:
    """Refuse a parameter this endpoint does not know."""
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise InvalidInput(_("unknown query parameter: %(field)s", field=unknown[0]), unknown[0], status=400)


def wants_html(args: Mapping[str, str], accept_best: str | None) -> bool:
    """Return whether to answer HTML: ``f=html``, or a browser that prefers it and gave no ``f``."""
    chosen = args.get("f")
    if chosen is None or chosen == "":
        return accept_best == "text/html"
    if chosen not in ("json", "html"):
        raise InvalidInput(_("%(field)s must be one of: %(options)s", field="f", options="json, html"), "f", status=400)
    return chosen == "html"


def bbox(value: str | None, default: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Return (min lon, min lat, max lon, max lat) from four numbers, or six with heights (ignored)."""
    if value is not None:
        parts = value.split(",")
        if len(parts) == 6:
            value = ",".join((parts[0], parts[1], parts[3], parts[4]))
    with query_parameters():
        return parse.bbox(value, default)


def _moment(text: str, *, end: bool) -> datetime:
    """Return an RFC 3339 date-time (UTC when it has no offset); a bare date is its first or last moment."""
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            with query_parameters():
                parse.in_years(day, "datetime")
            start = datetime.combine(day, time(), UTC)
            return start + timedelta(days=1, microseconds=-1) if end else start
    with query_parameters():
        return parse.moment(text, "datetime")


@dataclass(frozen=True)
class Interval:
    """The ``datetime`` filter: buckets meeting [start, end]; None is an open end."""

    start: datetime | None
    end: datetime | None


def interval(value: str | None) -> Interval | None:
    """Return the ``datetime`` filter: an instant, or ``start/end`` with ``..`` or nothing for open ends."""
    if value is None:
        return None
    if "/" not in value:
        if value in OPEN:
            raise InvalidInput(_("datetime must be an instant or an interval start/end"), "datetime", status=400)
        return Interval(_moment(value, end=False), _moment(value, end=True))
    first, _slash, last = value.partition("/")
    if "/" in last:
        raise InvalidInput(_("datetime must be an instant or an interval start/end"), "datetime", status=400)
    start = None if first in OPEN else _moment(first, end=False)
    end = None if last in OPEN else _moment(last, end=True)
    if start is not None and end is not None and start > end:
        raise InvalidInput(_("datetime must not end before it starts"), "datetime", status=400)
    return Interval(start, end)


def integer(value: str | None, field: str, default: int, low: int, high: int) -> int:
    """Return a whole number in [low, high], or the default when absent."""
    with query_parameters():
        return parse.integer(value, field, default, low, high)
