"""The advocates' charts: series from published count atoms, drawn by ``mapsvc.core.charts``.

Times are bucket starts (privacy.md §2), in the service's time zone. The hour-of-day chart uses
only categories bucketed by the hour or finer (daily buckets carry no hour); the weekday chart
only categories bucketed by the day or finer. Each chart says which categories it leaves out.
"""

from __future__ import annotations

from babel.dates import get_day_names
from flask_babel import get_locale
from flask_babel import gettext as _

from mapsvc.core import charts
from mapsvc.core.counts import (
    CountAtom,
    Key,
    by_category,
    by_month,
    by_perpetrator,
    hour_of_day,
    months_between,
    time_breakdown,
    totals,
    weekday,
)
from mapsvc.services.advocacy.evidence import Evidence
from mapsvc.services.names import CATEGORY_NAMES, PERPETRATOR_NAMES

KINDS = ("month-category", "month-perpetrator", "hour", "weekday", "compare")
HOUR_S, DAY_S = 3600, 86400


def _named(rows: dict[str, list[int]], names: dict[str, object]) -> dict[str, list[int]]:
    """Return the series under their names in the reader's language."""
    return {str(names.get(key, key)): values for key, values in rows.items()}


def _bars(title: str, labels: list[str], rows: dict[str, list[int]], fmt: str) -> bytes:
    return charts.stacked_bars(
        title, labels, rows, fmt, ylabel=_("Events"), empty=_("No published counts for this selection.")
    )


def _monthly(evidence: Evidence, key: Key, names: dict[str, object], title: str, fmt: str) -> bytes:
    sel = evidence.question.selection
    months = [str(m) for m in months_between(sel.first, sel.last)]
    sums = totals(evidence.atoms, key, by_month)
    series = {name: [sums.get((name, m), 0) for m in months] for name in sorted({name for name, _m in sums})}
    return _bars(title, months, _named(series, names), fmt)


def _fine_enough(evidence: Evidence, limit_s: int) -> tuple[list[CountAtom], list[str]]:
    """Return the atoms of categories whose buckets are at most ``limit_s``, and the left-out categories."""
    policies = evidence.settings.policies
    ok = {name for name, p in policies.items() if p.bucket_s <= limit_s and limit_s % p.bucket_s == 0}
    left_out = sorted(evidence.question.selection.categories - ok)
    return [a for a in evidence.atoms if a.category in ok], left_out


def _note(left_out: list[str]) -> str:
    if not left_out:
        return ""
    names = ", ".join(str(CATEGORY_NAMES.get(c, c)) for c in left_out)
    # flask_babel has no type hints: the annotation says what its gettext returns.
    without: str = _("without %(categories)s: their time buckets are coarser", categories=names)
    return "\n" + without


def _period(first: object, last: object) -> str:
    return f"{first} – {last}"


def chart(evidence: Evidence, kind: str, fmt: str) -> bytes:
    """Return the chart ``kind`` (one of :data:`KINDS`) as ``png`` or ``svg`` bytes."""
    zone = evidence.settings.timezone
    sel = evidence.question.selection
    period = _period(sel.first, sel.last)
    if kind == "month-category":
        title = _("Events per month by category, %(period)s", period=period)
        return _monthly(evidence, by_category, CATEGORY_NAMES, title, fmt)
    if kind == "month-perpetrator":
        title = _("Events per month by perpetrator type, %(period)s", period=period)
        return _monthly(evidence, by_perpetrator, PERPETRATOR_NAMES, title, fmt)
    if kind == "hour":
        atoms, left_out = _fine_enough(evidence, HOUR_S)
        rows = _named(time_breakdown(atoms, hour_of_day(zone), 24), CATEGORY_NAMES)
        title = _("Events by hour of day (%(zone)s, hour buckets), %(period)s", zone=zone.key, period=period)
        return _bars(title + _note(left_out), [f"{h:02d}" for h in range(24)], rows, fmt)
    if kind == "weekday":
        atoms, left_out = _fine_enough(evidence, DAY_S)
        rows = _named(time_breakdown(atoms, weekday(zone), 7), CATEGORY_NAMES)
        names = get_day_names("abbreviated", locale=get_locale())
        days = [str(names[i]) for i in range(7)]  # babel numbers days from Monday, as Python does
        title = _("Events by weekday (%(zone)s), %(period)s", zone=zone.key, period=period)
        return _bars(title + _note(left_out), days, rows, fmt)
    if kind == "compare":
        return _comparison(evidence, fmt)
    raise ValueError(f"unknown chart {kind!r}")


def _comparison(evidence: Evidence, fmt: str) -> bytes:
    q = evidence.question
    categories = sorted(q.selection.categories)
    now = totals(evidence.atoms, by_category)
    groups = {_period(q.selection.first, q.selection.last): [now.get((c,), 0) for c in categories]}
    if q.compare:
        before = totals(evidence.compared, by_category)
        groups[_period(*q.compare)] = [before.get((c,), 0) for c in categories]
    labels = [str(CATEGORY_NAMES.get(c, c)) for c in categories]
    return charts.grouped_bars(_("Events by category: two periods compared"), labels, groups, fmt, ylabel=_("Events"))
