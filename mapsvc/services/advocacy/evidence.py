"""Advocacy evidence: the advocate's question parsed, answered from the store, shaped into tables.

Shared by the pages (``mapsvc.web.advocacy.views``) and the command line (``mapsvc.cli.advocacy``).
Every figure comes from the published count atoms of ``mapsvc.core.counts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from mapsvc.core.counts import (
    CountAtom,
    Month,
    Selection,
    build_atoms,
    by_category,
    by_month,
    cell_at,
    in_districts,
    selected,
    totals,
)
from mapsvc.core.districts import District, assign_cells
from mapsvc.core.errors import InvalidInput
from mapsvc.core.events import PublicEvent
from mapsvc.core.hotspots import DEFAULT_PERMUTATIONS, HotspotResult, getis_ord, study_cells
from mapsvc.core.policy import PERPETRATORS
from mapsvc.services.parse import YEARS
from mapsvc.settings import Settings
from mapsvc.store.advocacy import Period, count_rows, load_districts, public_events
from mapsvc.store.db import Store

#: How many levels coarser than the count atoms an advocate may aggregate.
COARSER_LEVELS = 3
GROUPS = ("cell", "district")


@dataclass(frozen=True)
class Question:
    """What an advocate asks: the selection, how to group, and the hotspot parameters."""

    selection: Selection
    resolution: int
    group: str = "cell"
    permutations: int = DEFAULT_PERMUTATIONS
    alpha: float = 0.05
    seed: int | None = None
    compare: tuple[Month, Month] | None = None

    def as_params(self) -> dict[str, str]:
        """Return the question as query parameters (for links to charts and exports)."""
        s = self.selection
        params = {
            "from": str(s.first),
            "to": str(s.last),
            "category": ",".join(sorted(s.categories)),
            "perpetrator": ",".join(sorted(s.perpetrators)),
            "resolution": str(self.resolution),
            "group": self.group,
            "permutations": str(self.permutations),
            "alpha": str(self.alpha),
        }
        if self.seed is not None:
            params["seed"] = str(self.seed)
        if self.compare:
            params["compare_from"], params["compare_to"] = str(self.compare[0]), str(self.compare[1])
        return params


def atom_resolution(s: Settings) -> int:
    """Return the resolution of count atoms: ``ADVOCACY_RESOLUTION``, never finer than the heat cells."""
    return min(s.advocacy_resolution, s.heat_resolution)


def _month(values: Mapping[str, str], name: str, default: Month) -> Month:
    text = (values.get(name) or "").strip()
    if not text:
        return default
    try:
        month = Month.parse(text)
    except ValueError:
        raise InvalidInput(f"{name}: a month is written YYYY-MM", name) from None
    if not YEARS[0] <= month.year <= YEARS[1]:  # a month's start and end are computed with its zone
        raise InvalidInput(f"{name}: the year must lie between {YEARS[0]} and {YEARS[1]}", name)
    return month


def _choices(values: Mapping[str, str], name: str, known: list[str]) -> frozenset[str]:
    text = (values.get(name) or "").strip()
    if not text:
        return frozenset(known)
    chosen = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(chosen - set(known))
    if unknown or not chosen:
        raise InvalidInput(f"{name}: unknown value(s) {', '.join(unknown) or '(none)'}", name)
    return frozenset(chosen)


def _number(values: Mapping[str, str], name: str, default: float, kind: type, low: float, high: float) -> float:
    text = (values.get(name) or "").strip()
    if not text:
        return default
    try:
        number = kind(text)
    except ValueError:
        raise InvalidInput(f"{name}: not a number", name) from None
    if not low <= number <= high:
        raise InvalidInput(f"{name}: must lie between {low} and {high}", name)
    return float(number)


def parse_question(values: Mapping[str, str], s: Settings) -> Question:
    """Return the question of query parameters (or CLI options); raise InvalidInput naming the field."""
    now_month = Month.of(s.now(), s.timezone)
    months = now_month.year * 12 + now_month.month - 1 - 11
    default_first = Month(months // 12, months % 12 + 1)  # a year, this month included
    first, last = _month(values, "from", default_first), _month(values, "to", now_month)
    if last < first:
        raise InvalidInput("to: the period ends before it starts", "to")
    finest = atom_resolution(s)
    resolution = int(_number(values, "resolution", finest, int, max(finest - COARSER_LEVELS, 0), finest))
    group = (values.get("group") or "cell").strip()
    if group not in GROUPS:
        raise InvalidInput("group: must be cell or district", "group")
    seed_text = (values.get("seed") or "").strip()
    compare = None
    if (values.get("compare_from") or "").strip() or (values.get("compare_to") or "").strip():
        compare = (_month(values, "compare_from", first), _month(values, "compare_to", last))
        if compare[1] < compare[0]:
            raise InvalidInput("compare_to: the period ends before it starts", "compare_to")
    return Question(
        selection=Selection(
            first,
            last,
            _choices(values, "category", list(s.policies)),
            _choices(values, "perpetrator", list(PERPETRATORS)),
        ),
        resolution=resolution,
        group=group,
        permutations=int(_number(values, "permutations", DEFAULT_PERMUTATIONS, int, 99, 99_999)),
        alpha=_number(values, "alpha", 0.05, float, 0.001, 0.5),
        seed=int(_number(values, "seed", 0, int, 0, 2**31 - 1)) if seed_text else None,
        compare=compare,
    )


@dataclass
class Evidence:
    """The published atoms answering a question, with the districts and the study area."""

    question: Question
    settings: Settings
    atoms: list[CountAtom]
    districts: list[District]
    compared: list[CountAtom] = field(default_factory=list)
    events: list[PublicEvent] | None = None

    @property
    def min_counts(self) -> dict[str, int]:
        """Return the export minimum of each category."""
        return {name: p.min_count_export for name, p in self.settings.policies.items()}

    def period_label(self) -> str:
        """Return the period as text, ``YYYY-MM to YYYY-MM``."""
        return f"{self.question.selection.first} to {self.question.selection.last}"


def _period(first: Month, last: Month, s: Settings) -> Period:
    return Period(first.start(s.timezone), last.next().start(s.timezone), s.now())


def gather(store: Store, question: Question, s: Settings, with_events: bool = False) -> Evidence:
    """Read what the question needs from the store and keep only published atoms in the selection."""
    zone, sel, res = s.timezone, question.selection, atom_resolution(s)
    mins = {name: p.min_count_export for name, p in s.policies.items()}
    with store.reader() as session:
        rows = count_rows(session, _period(sel.first, sel.last, s), s.policies)
        districts = load_districts(session)
        compared: list[CountAtom] = []
        if question.compare:
            first, last = question.compare
            other = Selection(first, last, sel.categories, sel.perpetrators)
            compared = selected(
                build_atoms(count_rows(session, _period(first, last, s), s.policies), res, zone), other, mins
            )
        events = None
        if with_events:
            policies = {k: v for k, v in s.policies.items() if k in sel.categories}
            events = public_events(session, _period(sel.first, sel.last, s), policies, sel.perpetrators)
    atoms = selected(build_atoms(rows, res, zone), sel, mins)
    return Evidence(question, s, atoms, districts, compared, events)


def area_key(evidence: Evidence):  # type: ignore[no-untyped-def]
    """Return the grouping key of the question: a cell at its resolution, or a district."""
    if evidence.question.group == "district":
        return in_districts(assign_cells({a.cell for a in evidence.atoms}, evidence.districts))
    return cell_at(evidence.question.resolution)


def area_table(evidence: Evidence) -> list[tuple[str, str, str, int]]:
    """Return (area, month, category, events) rows: cells or districts, months, categories."""
    return [
        (area, month, category, n)
        for (area, month, category), n in totals(evidence.atoms, area_key(evidence), by_month, by_category).items()
    ]


def area_totals(evidence: Evidence) -> dict[str, dict[str, int]]:
    """Return, per area, the events per category over the whole period."""
    out: dict[str, dict[str, int]] = {}
    for (area, category), n in totals(evidence.atoms, area_key(evidence), by_category).items():
        out.setdefault(area, {})[category] = n
    return out


def hotspots(evidence: Evidence) -> HotspotResult:
    """Return Gi* over the service area's cells at the question's resolution, from published counts."""
    q = evidence.question
    cells = study_cells(evidence.settings.area.geometry, q.resolution)
    counts = {cell: n for (cell,), n in totals(evidence.atoms, cell_at(q.resolution)).items()}
    try:
        return getis_ord(counts, cells, q.permutations, q.alpha, q.seed)
    except ValueError as exc:
        field = "permutations" if "permutations" in str(exc) else "resolution"
        raise InvalidInput(f"{field}: {exc}", field) from exc


def today(s: Settings) -> datetime:
    """Return now in the service's zone (for the report's date line)."""
    return s.now().astimezone(s.timezone)
