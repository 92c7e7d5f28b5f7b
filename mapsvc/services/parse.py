"""Parsing and checking submitted values: a report, a plan, a question. Failures name their field, never a value."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from flask_babel import gettext as _

from mapsvc.core.errors import InvalidInput
from mapsvc.core.policy import CategoryPolicy
from mapsvc.core.text import refused_characters


def coordinate(value: Any, field: str, low: float, high: float) -> float:
    """Return a finite number in [low, high] from JSON or form input."""
    if value is None or value == "":
        raise InvalidInput(_("%(field)s is required and must be a number", field=field), field)
    if isinstance(value, bool):
        raise InvalidInput(_("%(field)s must be a number", field=field), field)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(_("%(field)s must be a number", field=field), field) from None
    except OverflowError:  # a whole number too large for a float: out of any range
        number = math.inf if value > 0 else -math.inf
    else:
        if not math.isfinite(number):
            raise InvalidInput(_("%(field)s must be a finite number", field=field), field)
    if not low <= number <= high:
        raise InvalidInput(
            _("%(field)s must lie between %(low)s and %(high)s", field=field, low=f"{low:g}", high=f"{high:g}"), field
        )
    return number


#: The years a written moment may have: every date-time a client sends must lie in them (on its own
#: clock, before any offset), so that adding a day, an offset or a retention period never leaves
#: the years Python can hold (1 to 9999), and the database's types hold every result.
YEARS = (1970, 2999)


def moment(value: Any, field: str, zone: tzinfo = UTC) -> datetime:
    """Return an aware UTC datetime from an ISO 8601 string; one without offset is in ``zone``.

    Only moments written in the years of :data:`YEARS` are accepted.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(_("%(field)s must be an ISO 8601 date-time", field=field), field)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(_("%(field)s must be an ISO 8601 date-time", field=field), field) from None
    in_years(parsed, field)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def in_years(written: datetime | date, field: str) -> None:
    """Refuse a moment or a day written outside the years of :data:`YEARS`."""
    if not YEARS[0] <= written.year <= YEARS[1]:
        raise InvalidInput(
            _("%(field)s must lie in the years %(first)s to %(last)s", field=field, first=YEARS[0], last=YEARS[1]),
            field,
        )


def choice(value: Any, field: str, allowed: Iterable[str], default: str | None = None) -> str:
    """Return ``value`` if it is one of ``allowed`` (or the default when absent)."""
    options = list(allowed)
    if value in (None, "") and default is not None:
        return default
    if not isinstance(value, str) or value not in options:
        raise InvalidInput(_("%(field)s must be one of: %(options)s", field=field, options=", ".join(options)), field)
    return value


def text(value: Any, field: str, max_length: int) -> str | None:
    """Return stripped free text no longer than ``max_length`` characters, or None if empty."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(_("%(field)s must be text", field=field), field)
    # Checked as sent, before stripping, as the OpenAPI documents say.
    if refused_characters(value):
        raise InvalidInput(
            _("%(field)s must not hold control characters or broken Unicode (lone surrogates)", field=field), field
        )
    if len(value) > max_length:
        raise InvalidInput(_("%(field)s must be at most %(n)s characters", field=field, n=max_length), field)
    return value.strip() or None


def flag(value: Any, field: str) -> bool:
    """Return a boolean from JSON true/false or form values "1"/"true"/"on"."""
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"1", "true", "on", "yes", "0", "false", "off", "no"}:
        return value.lower() in {"1", "true", "on", "yes"}
    raise InvalidInput(_("%(field)s must be true or false", field=field), field)


def bbox(value: str | None, default: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Return (min lon, min lat, max lon, max lat) from "minLon,minLat,maxLon,maxLat"."""
    if value in (None, ""):
        return default
    parts = str(value).split(",")
    if len(parts) != 4:
        raise InvalidInput(_("bbox must be four numbers: minLon,minLat,maxLon,maxLat"), "bbox")
    min_lon = coordinate(parts[0], "bbox", -180, 180)
    min_lat = coordinate(parts[1], "bbox", -90, 90)
    max_lon = coordinate(parts[2], "bbox", -180, 180)
    max_lat = coordinate(parts[3], "bbox", -90, 90)
    if min_lon >= max_lon or min_lat >= max_lat:
        raise InvalidInput(_("bbox minimums must be smaller than its maximums"), "bbox")
    return (min_lon, min_lat, max_lon, max_lat)


def categories(value: str | None, policies: Mapping[str, CategoryPolicy]) -> list[CategoryPolicy]:
    """Return the policies of a comma-separated category list, or of all categories."""
    if value in (None, ""):
        return list(policies.values())
    names = [name.strip() for name in str(value).split(",") if name.strip()]
    unknown = [name for name in names if name not in policies]
    if unknown or not names:
        raise InvalidInput(
            _("category must be a comma-separated list of: %(options)s", options=", ".join(policies)), "category"
        )
    return [policies[name] for name in dict.fromkeys(names)]


def _integral(text: str, field: str) -> int:
    """Return a whole number written as a decimal ("5.0", "5e0": JSON Schema's integers are these too)."""
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number.is_integer():  # NaN and infinities are not
        raise InvalidInput(_("%(field)s must be a whole number", field=field), field)
    return int(number)


def integer(value: str | None, field: str, default: int, low: int, high: int) -> int:
    """Return an integer in [low, high], or the default when absent."""
    if value in (None, ""):
        return default
    try:
        number = int(str(value))
    except ValueError:
        number = _integral(str(value), field)
    if not low <= number <= high:
        raise InvalidInput(_("%(field)s must lie between %(low)s and %(high)s", field=field, low=low, high=high), field)
    return number


#: An idempotency key: 16 to 128 characters of the URL-safe base64 alphabet (hex fits too).
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{16,128}")


def idempotency_key(value: str | None, field: str = "Idempotency-Key") -> str | None:
    """Return an idempotency key if one was sent (None if not); a malformed one is refused with 400."""
    if value is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidInput(
            _("%(field)s must be 16 to 128 characters of A-Z, a-z, 0-9, _ and -", field=field), field, status=400
        )
    return value
