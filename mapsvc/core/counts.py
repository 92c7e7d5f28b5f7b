"""Counts over periods for advocacy: count atoms and their consistent suppression.

privacy.md §3 asks that aggregates be suppressed below a minimum count *consistently across
resolutions and filters*, so that a hidden cell can never be recovered as "parent total minus
visible children". The heat layer solves this with atoms (``mapsvc.core.heat``); counts over a
period use the same idea with a finer atom, because advocates filter by more than category:

    a **count atom** is one category × one perpetrator type × one atom cell × one month.

An atom is *published* when it holds at least its category's ``min_count_export`` distinct
events. Every number advocacy shows (a coarser cell, a district, a month, a chart bar, a total,
the input of Gi*) is a sum over published atoms only. Each filter (categories, perpetrator
types, months, area) selects whole atoms, so whatever the filters or the resolution, a hidden
atom contributes to no output at all: changing it changes nothing anyone can see, and so no
subtraction of outputs can recover it. A sum of published atoms is either 0 or at least the
smallest minimum, so coarser cells and districts need no suppression of their own.

Time breakdowns (hour of day, weekday) divide published atoms' events by their time bucket;
they never add an event that a hidden atom holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import h3

#: Default resolution of count atoms: hexagons of about 5.2 km² (H3 resolution 7).
DEFAULT_COUNT_RESOLUTION = 7


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month in the service's time zone."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """Parse ``YYYY-MM``; raise ValueError otherwise."""
        try:
            parsed = datetime.strptime(text.strip(), "%Y-%m")
        except ValueError:
            raise ValueError("a month is written YYYY-MM") from None
        return cls(parsed.year, parsed.month)

    @classmethod
    def of(cls, moment: datetime, zone: ZoneInfo) -> Month:
        """Return the month holding an aware moment in ``zone``."""
        local = moment.astimezone(zone)
        return cls(local.year, local.month)

    def start(self, zone: ZoneInfo) -> datetime:
        """Return the first instant of the month in ``zone``."""
        return datetime(self.year, self.month, 1, tzinfo=zone)

    def next(self) -> Month:
        """Return the following month."""
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def months_between(first: Month, last: Month) -> list[Month]:
    """Return every month from ``first`` to ``last`` inclusive."""
    months, month = [], first
    while month <= last:
        months.append(month)
        month = month.next()
    return months


@dataclass(frozen=True)
class CountAtom:
    """Events of one category and perpetrator type in one atom cell in one month.

    ``buckets`` holds the events per time-bucket start, for the hour and weekday breakdowns.
    """

    cell: str
    category: str
    perpetrator: str
    month: Month
    events: int
    buckets: tuple[tuple[datetime, int], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Selection:
    """What an advocate asks about: months (inclusive), categories and perpetrator types."""

    first: Month
    last: Month
    categories: frozenset[str]
    perpetrators: frozenset[str]

    def __post_init__(self) -> None:
        """Refuse an empty or reversed selection."""
        if self.last < self.first:
            raise ValueError("the period ends before it starts")
        if not self.categories or not self.perpetrators:
            raise ValueError("choose at least one category and one perpetrator type")

    def holds(self, atom: CountAtom) -> bool:
        """Return whether the atom lies wholly inside the selection."""
        return (
            self.first <= atom.month <= self.last
            and atom.category in self.categories
            and atom.perpetrator in self.perpetrators
        )


def build_atoms(
    rows: Iterable[tuple[str, str, str, datetime, int]], resolution: int, zone: ZoneInfo
) -> list[CountAtom]:
    """Return count atoms from (heat cell, category, perpetrator, bucket start, events) rows.

    Heat cells (the stored finer cells) are lifted to ``resolution``; months are those of the
    bucket starts in ``zone``.
    """
    grouped: dict[tuple[str, str, str, Month], Counter[datetime]] = {}
    for heat_cell, category, perpetrator, bucket, events in rows:
        key = (_parent(heat_cell, resolution), category, perpetrator, Month.of(bucket, zone))
        grouped.setdefault(key, Counter())[bucket] += events
    return [
        CountAtom(cell, category, perpetrator, month, sum(b.values()), tuple(sorted(b.items())))
        for (cell, category, perpetrator, month), b in sorted(grouped.items(), key=lambda kv: _sort_key(kv[0]))
    ]


def _sort_key(key: tuple[str, str, str, Month]) -> tuple[str, str, str, int, int]:
    cell, category, perpetrator, month = key
    return (cell, category, perpetrator, month.year, month.month)


@lru_cache(maxsize=65536)
def _parent(cell: str, resolution: int) -> str:
    own = h3.get_resolution(cell)
    if own < resolution:
        raise ValueError("the count resolution is finer than the stored heat cells")
    return cell if own == resolution else str(h3.cell_to_parent(cell, resolution))


def published(atoms: Iterable[CountAtom], min_counts: Mapping[str, int]) -> list[CountAtom]:
    """Return the atoms that reach their category's minimum count (privacy.md §3)."""
    return [a for a in atoms if a.events >= max(min_counts[a.category], 1)]


def selected(atoms: Iterable[CountAtom], selection: Selection, min_counts: Mapping[str, int]) -> list[CountAtom]:
    """Return the published atoms inside the selection: the only input of every output."""
    return [a for a in published(atoms, min_counts) if selection.holds(a)]


Key = Callable[[CountAtom], str]


def totals(atoms: Iterable[CountAtom], *keys: Key) -> dict[tuple[str, ...], int]:
    """Return event sums of (already published) atoms grouped by the given keys."""
    sums: Counter[tuple[str, ...]] = Counter()
    for atom in atoms:
        sums[tuple(key(atom) for key in keys)] += atom.events
    return dict(sorted(sums.items()))


def cell_at(resolution: int) -> Key:
    """Return a key giving an atom's cell at a coarser (or equal) ``resolution``."""

    def key(atom: CountAtom) -> str:
        return _parent(atom.cell, resolution)

    return key


def by_month(atom: CountAtom) -> str:
    """Key: the atom's month, ``YYYY-MM``."""
    return str(atom.month)


def by_category(atom: CountAtom) -> str:
    """Key: the atom's category."""
    return atom.category


def by_perpetrator(atom: CountAtom) -> str:
    """Key: the atom's perpetrator type."""
    return atom.perpetrator


def in_districts(assignment: Mapping[str, str | None], outside: str = "") -> Key:
    """Return a key giving the district an atom cell's centre lies in (``outside`` for none)."""

    def key(atom: CountAtom) -> str:
        return assignment.get(atom.cell) or outside

    return key


def time_breakdown(
    atoms: Iterable[CountAtom], slot: Callable[[datetime], int], slots: int, key: Key = by_category
) -> dict[str, list[int]]:
    """Return, per key, the events of published atoms by time slot (hour of day, weekday).

    Parameters
    ----------
    atoms : iterable of CountAtom
        Published atoms only; their bucket starts are the times used.
    slot : callable
        Maps a bucket start to a slot number in ``range(slots)``.
    slots : int
        How many slots (24 hours, 7 weekdays).
    key : callable
        Groups the atoms (by category by default).

    """
    out: dict[str, list[int]] = {}
    for atom in atoms:
        row = out.setdefault(key(atom), [0] * slots)
        for bucket, events in atom.buckets:
            row[slot(bucket)] += events
    return dict(sorted(out.items()))


def hour_of_day(zone: ZoneInfo) -> Callable[[datetime], int]:
    """Return the slot function giving a bucket start's local hour (0 to 23)."""
    return lambda moment: moment.astimezone(zone).hour


def weekday(zone: ZoneInfo) -> Callable[[datetime], int]:
    """Return the slot function giving a bucket start's local weekday (Monday 0)."""
    return lambda moment: moment.astimezone(zone).weekday()


def month_dates(first: Month, last: Month) -> tuple[date, date]:
    """Return the first day of ``first`` and the first day after ``last``."""
    after = last.next()
    return date(first.year, first.month, 1), date(after.year, after.month, 1)
