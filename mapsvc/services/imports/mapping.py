"""How the columns of an imported CSV file become mapsvc reports: the column mapping.

Three layouts are known. A plain CSV whose headers are mapsvc's own field names (``category``,
``lat``, ``lon``, ``time``, ``perpetrator``, ``details``) needs no mapping; any other CSV names
its columns in a mapping file or with options. Ushahidi's CSV exports are recognised by their
headers and mapped by default:

- Ushahidi v3 and later ("platform"): ``Post ID``, ``Post Status``, ``Created (UTC)``,
  ``Updated (UTC)``, ``Post Date (UTC)``, ``Contact ID``, ``Contact``, ``Sets``, then the survey's
  fields by label; a location field gives two columns, ``<label>.lat`` and ``<label>.lon``; a
  categories field lists tag names separated by commas. A second header row of HXL hashtags may
  follow the first.
- Ushahidi v2 ("Ushahidi_Web", classic Crowdmap): ``#``, ``INCIDENT TITLE``, ``INCIDENT DATE``,
  ``LOCATION``, ``DESCRIPTION``, ``CATEGORY``, ``LATITUDE``, ``LONGITUDE``, ``APPROVED``,
  ``VERIFIED`` (and, when chosen, ``FIRST NAME``, ``LAST NAME``, ``EMAIL``).

Columns that could name a reporter (Ushahidi's ``Contact``, names and e-mails, titles and
descriptions) are never read unless the mapping names them, and free text is kept only where
the organisation turned ``STORE_DETAILS`` on.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mapsvc.core.policy import PERPETRATORS

#: The report fields a column can feed; the first four are required.
FIELDS = ("category", "lat", "lon", "time", "perpetrator", "details")
REQUIRED = ("category", "lat", "lon", "time")

#: What to do with a row by its source status: import it, hold it for a moderator, or skip it.
IMPORT, HOLD, SKIP = "import", "hold", "skip"


class MappingError(ValueError):
    """The mapping cannot apply to this file (a missing column, a bad option); nothing is read."""


@dataclass(frozen=True)
class ColumnMapping:
    """Which column feeds which field, and how values become mapsvc's categories and times.

    Attributes
    ----------
    layout : str
        ``csv``, ``ushahidi-v3`` or ``ushahidi-v2``.
    columns : mapping of str to str
        Report field (see ``FIELDS``) to column header.
    categories, perpetrators : mapping of str to str
        Value in the file (compared without case) to mapsvc category or perpetrator type; a
        category mapped to ``""`` is ignored (a tag such as a district name).
    multi_category : bool
        The category cell lists several values separated by commas (Ushahidi's tags).
    timezone : str or None
        IANA zone of times written without an offset; None: the service's zone.
    time_format : str or None
        ``strptime`` format of the times; None: ISO 8601 (``2024-05-01 22:30:00`` too).
    status_column : str or None
        A column whose value decides per row: import, hold for a moderator, or skip.
    statuses : mapping of str to str
        Status value (without case) to ``import``, ``hold`` or ``skip``.
    skip_second_row : bool
        The row after the header may be Ushahidi's HXL hashtags, skipped when it is.

    """

    layout: str = "csv"
    columns: Mapping[str, str] = field(default_factory=dict)
    categories: Mapping[str, str] = field(default_factory=dict)
    perpetrators: Mapping[str, str] = field(default_factory=dict)
    multi_category: bool = False
    timezone: str | None = None
    time_format: str | None = None
    status_column: str | None = None
    statuses: Mapping[str, str] = field(default_factory=dict)
    skip_second_row: bool = False


def detect_layout(header: Sequence[str]) -> str:
    """Return the layout a header row looks like: ``ushahidi-v3``, ``ushahidi-v2`` or ``csv``."""
    names = {h.strip() for h in header}
    if "Post ID" in names:
        return "ushahidi-v3"
    if {"INCIDENT TITLE", "INCIDENT DATE"} <= names:
        return "ushahidi-v2"
    return "csv"


def _find(header: Sequence[str], *names: str) -> str | None:
    """Return the header that equals one of ``names`` (without case), trying them in order."""
    by_lower = {h.strip().lower(): h for h in header}
    for name in names:
        if name.lower() in by_lower:
            return by_lower[name.lower()]
    return None


def _ushahidi_v3(header: Sequence[str]) -> ColumnMapping:
    columns: dict[str, str] = {}
    lats = [h for h in header if h.endswith(".lat") and h[:-4] + ".lon" in header]
    if len(lats) == 1:
        columns["lat"], columns["lon"] = lats[0], lats[0][:-4] + ".lon"
    for name, candidates in (("time", ("Post Date (UTC)", "Created (UTC)")), ("category", ("Categories",))):
        found = _find(header, *candidates)
        if found:
            columns[name] = found
    return ColumnMapping(
        layout="ushahidi-v3",
        columns=columns,
        multi_category=True,
        timezone="UTC",
        status_column=_find(header, "Post Status"),
        statuses={"published": IMPORT, "draft": HOLD, "archived": SKIP},
        skip_second_row=True,
    )


def _ushahidi_v2(header: Sequence[str]) -> ColumnMapping:
    names = {"time": "INCIDENT DATE", "lat": "LATITUDE", "lon": "LONGITUDE", "category": "CATEGORY"}
    columns = {f: h for f, name in names.items() if (h := _find(header, name))}
    return ColumnMapping(
        layout="ushahidi-v2",
        columns=columns,
        multi_category=True,
        status_column=_find(header, "APPROVED"),
        statuses={"yes": IMPORT, "no": HOLD},
    )


def _plain(header: Sequence[str]) -> ColumnMapping:
    aliases = {"time": ("time", "occurred_at")}
    columns = {f: h for f in FIELDS if (h := _find(header, *aliases.get(f, (f,))))}
    return ColumnMapping(layout="csv", columns=columns)


def default_mapping(header: Sequence[str], layout: str | None = None) -> ColumnMapping:
    """Return the default mapping of a header for its layout (detected when not given)."""
    chosen = layout or detect_layout(header)
    builders = {"ushahidi-v3": _ushahidi_v3, "ushahidi-v2": _ushahidi_v2, "csv": _plain}
    if chosen == "ushahidi":
        chosen = detect_layout(header)
        if chosen == "csv":
            raise MappingError("the header is not one of Ushahidi's CSV exports (no 'Post ID' nor 'INCIDENT TITLE')")
    if chosen not in builders:
        raise MappingError(f"unknown format {chosen!r}: use csv or ushahidi")
    return builders[chosen](header)


def _lowered(values: Mapping[str, Any], what: str) -> dict[str, str]:
    if not isinstance(values, Mapping) or not all(isinstance(v, str) for v in values.values()):
        raise MappingError(f"[{what}] must map values to names")
    return {str(k).strip().lower(): v.strip() for k, v in values.items()}


def read_mapping_file(path: Path) -> dict[str, Any]:
    """Return the settings of a TOML mapping file (see docs/imports.md), checked for unknown keys."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MappingError(f"{path.name}: not a readable TOML mapping file ({type(exc).__name__})") from None
    known = {"format", "delimiter", "timezone", "time_format", "columns", "categories", "perpetrators", "statuses"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise MappingError(f"{path.name}: unknown key {unknown[0]!r}")
    return data


def apply_overrides(base: ColumnMapping, overrides: Mapping[str, Any]) -> ColumnMapping:
    """Return ``base`` with a mapping file's or the options' settings laid over it."""
    columns = dict(base.columns)
    given = overrides.get("columns") or {}
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise MappingError(f"unknown report field {unknown[0]!r} in the column mapping; fields: {', '.join(FIELDS)}")
    columns.update({k: str(v) for k, v in given.items()})
    statuses = dict(base.statuses)
    statuses.update(_lowered(overrides.get("statuses") or {}, "statuses"))
    if any(v not in (IMPORT, HOLD, SKIP) for v in statuses.values()):
        raise MappingError("[statuses] values must be import, hold or skip")
    return replace(
        base,
        columns=columns,
        categories={**base.categories, **_lowered(overrides.get("categories") or {}, "categories")},
        perpetrators={**base.perpetrators, **_lowered(overrides.get("perpetrators") or {}, "perpetrators")},
        timezone=overrides.get("timezone") or base.timezone,
        time_format=overrides.get("time_format") or base.time_format,
        statuses=statuses,
    )


def check_mapping(mapping: ColumnMapping, header: Sequence[str], categories: Sequence[str]) -> None:
    """Refuse a mapping that cannot apply: a required field without a column, a column not in the file."""
    for name in REQUIRED:
        if name not in mapping.columns:
            raise MappingError(f"no column gives the report's {name}: name one with --column {name}=HEADER")
    for name, column in mapping.columns.items():
        if column not in header:
            raise MappingError(f"the file has no column {column!r} (mapped to {name})")
    bad = sorted({v for v in mapping.categories.values() if v and v not in categories})
    if bad:
        raise MappingError(f"the category mapping names an unknown category {bad[0]!r}: {', '.join(categories)}")
    bad = sorted({v for v in mapping.perpetrators.values() if v not in PERPETRATORS})
    if bad:
        raise MappingError(f"the perpetrator mapping names an unknown type {bad[0]!r}: {', '.join(PERPETRATORS)}")


def pairs(values: Sequence[str], option: str) -> dict[str, str]:
    """Return ``KEY=VALUE`` option values as a mapping."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MappingError(f"{option} takes KEY=VALUE")
        out[key.strip()] = value.strip()
    return out
