"""Importing existing documentation: rows of a CSV file become fuzzed, bucketed, merged reports.

Each row goes through the same path as a report sent by an API client with an exact point
(``mapsvc.services.intake.check`` and ``store_checked``): checks, planar Laplace noise drawn once on arrival, the time
floored to its bucket, and then the usual merge rules. The file is read as a stream, row by row.
Either every row is stored, in one transaction, or none: the first bad row stops storing, the
rest are still checked so that one run reports every bad row, and the transaction is rolled
back. Imported reports have no withdrawal code (there is no one to give it to): a moderator
rejects an imported event that should not be there.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mapsvc.core.errors import InvalidInput
from mapsvc.core.policy import PERPETRATORS
from mapsvc.core.trust import Hold
from mapsvc.services import parse
from mapsvc.services.imports.mapping import (
    HOLD,
    IMPORT,
    SKIP,
    ColumnMapping,
    MappingError,
    apply_overrides,
    check_mapping,
    default_mapping,
)
from mapsvc.services.intake import CheckedReport, check, store_checked
from mapsvc.settings import Settings
from mapsvc.store.db import Store
from mapsvc.store.events import Standing
from mapsvc.store.imports import lock_events_for_import

#: Row errors kept for the report; more are only counted.
MAX_LISTED_ERRORS = 200


@dataclass(frozen=True)
class RowError:
    """One bad row: its number as a spreadsheet shows it (the header is row 1), the column, the problem."""

    row: int
    column: str
    message: str

    def __str__(self) -> str:
        """Return the line the report prints."""
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass
class ImportResult:
    """What an import read, stored (or would store), held, skipped and refused."""

    layout: str = "csv"
    rows: int = 0
    imported: int = 0
    merged: int = 0
    held: int = 0
    skipped: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    unknown_categories: Counter[str] = field(default_factory=Counter)
    stored: bool = False

    def add_error(self, error: RowError) -> None:
        """Count a bad row, and keep it for the report while the list is short."""
        self.error_count += 1
        if len(self.errors) < MAX_LISTED_ERRORS:
            self.errors.append(error)


class ImportFailed(Exception):
    """The file, or a row of it, is bad: nothing was stored."""

    def __init__(self, result: ImportResult, problem: str | None = None) -> None:
        super().__init__(problem or f"{result.error_count} bad rows")
        self.result = result
        self.problem = problem


class _RowProblem(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass(frozen=True)
class _Columns:
    """The mapping resolved against the header: column positions and names."""

    mapping: ColumnMapping
    index: Mapping[str, int]
    zone: ZoneInfo
    categories: Mapping[str, str]

    def cell(self, cells: Sequence[str], name: str) -> str:
        position = self.index.get(name)
        return "" if position is None else cells[position].strip()

    def column(self, name: str) -> str:
        return self.mapping.columns.get(name, name)


def _category(cols: _Columns, cells: Sequence[str], result: ImportResult) -> str:
    cell = cols.cell(cells, "category")
    values = [v.strip() for v in cell.split(",")] if cols.mapping.multi_category else [cell]
    values = [v for v in values if v]
    column = cols.column("category")
    if not values:
        raise _RowProblem(column, "the category is empty")
    found = set()
    for value in values:
        key = value.lower()
        target = cols.mapping.categories.get(key, cols.categories.get(key))
        if target is None:
            result.unknown_categories[value[:60]] += 1
            raise _RowProblem(column, f"no mapsvc category for the value {value[:60]!r}: map it with --category-map")
        if target:
            found.add(target)
    if len(found) != 1:
        problem = "every value is mapped to be ignored" if not found else "the values map to several categories"
        raise _RowProblem(column, f"{problem} ({', '.join(sorted(found))}); a report has one category")
    return found.pop()


def _moment(cols: _Columns, cells: Sequence[str]) -> datetime:
    text = cols.cell(cells, "time")
    column = cols.column("time")
    if not text:
        raise _RowProblem(column, "the time is empty")
    try:
        if cols.mapping.time_format:
            parsed = datetime.strptime(text, cols.mapping.time_format)
        else:
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        expected = cols.mapping.time_format or "ISO 8601, e.g. 2024-05-01 22:30:00"
        raise _RowProblem(column, f"the time is not a date and time ({expected})") from None
    try:
        parse.in_years(parsed, "time")
    except InvalidInput as exc:
        raise _RowProblem(column, exc.message) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=cols.zone)
    return parsed.astimezone(UTC)


def _perpetrator(cols: _Columns, cells: Sequence[str]) -> str:
    value = cols.cell(cells, "perpetrator").lower()
    if not value:
        return "unknown"
    found = cols.mapping.perpetrators.get(value, value)
    if found not in PERPETRATORS:
        message = f"unknown perpetrator type: map it with --perpetrator-map, or use {', '.join(PERPETRATORS)}"
        raise _RowProblem(cols.column("perpetrator"), message)
    return found


def _status(cols: _Columns, cells: Sequence[str]) -> str:
    column = cols.mapping.status_column
    if column is None:
        return IMPORT
    value = cells[cols.index["status"]].strip().lower()
    if value not in cols.mapping.statuses:
        raise _RowProblem(column, f"unknown status; expected one of: {', '.join(cols.mapping.statuses)}")
    return cols.mapping.statuses[value]


def _point(cols: _Columns, cells: Sequence[str]) -> tuple[float, float]:
    try:
        lat = parse.coordinate(cols.cell(cells, "lat"), "lat", -90, 90)
    except InvalidInput as exc:
        raise _RowProblem(cols.column("lat"), exc.message) from None
    try:
        lon = parse.coordinate(cols.cell(cells, "lon"), "lon", -180, 180)
    except InvalidInput as exc:
        raise _RowProblem(cols.column("lon"), exc.message) from None
    return lat, lon


def _check(cols: _Columns, cells: Sequence[str], s: Settings, result: ImportResult) -> CheckedReport:
    """Return the row as a checked report: every field checked, the time bucketed (not yet fuzzed)."""
    lat, lon = _point(cols, cells)
    submission: dict[str, Any] = {
        "category": _category(cols, cells, result),
        "lat": lat,
        "lon": lon,
        "occurred_at": _moment(cols, cells).isoformat(),
        "perpetrator": _perpetrator(cols, cells),
    }
    if "details" in cols.index:
        submission["details"] = cols.cell(cells, "details")
    try:
        return check(submission, s)
    except InvalidInput as exc:
        columns = {"lat": f"{cols.column('lat')}, {cols.column('lon')}", "occurred_at": cols.column("time")}
        field_name = exc.field or ""
        raise _RowProblem(columns.get(field_name, cols.column(field_name)), exc.message) from None


def _resolve(mapping: ColumnMapping, header: Sequence[str], s: Settings) -> _Columns:
    check_mapping(mapping, header, list(s.policies))
    try:
        zone = ZoneInfo(mapping.timezone) if mapping.timezone else s.timezone
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(f"unknown time zone {mapping.timezone!r}") from None
    index = {name: header.index(column) for name, column in mapping.columns.items()}
    if mapping.status_column:
        index["status"] = header.index(mapping.status_column)
    return _Columns(mapping, index, zone, {name.lower(): name for name in s.policies})


def _is_hxl(cells: Sequence[str]) -> bool:
    return all(not c.strip() or c.strip().startswith("#") for c in cells)


@dataclass(frozen=True)
class ImportOptions:
    """How to read and store: the layout, the mapping's settings, dry run, hold everything."""

    layout: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    delimiter: str = ","
    dry_run: bool = False
    hold_all: bool = False


def _lines(raw: BinaryIO) -> Iterator[str]:
    """Yield the file's lines decoded one by one, so a bad byte is found at its own row."""
    for number, line in enumerate(raw):
        text = line.decode("utf-8")
        yield text.removeprefix("\ufeff") if number == 0 else text


def _rows(text: Iterator[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (spreadsheet row number, cells) of every non-empty record after the header."""
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    for number, cells in enumerate(reader, start=2):
        if cells:
            yield number, cells


def run_import(
    source: Path | BinaryIO,
    options: ImportOptions,
    s: Settings,
    store: Store,
    progress: Callable[[int], None] = lambda _: None,
) -> ImportResult:
    """Import a file (a path, or an open binary stream such as an upload held in memory).

    Returns what was stored, or raises :class:`ImportFailed` having stored nothing.
    ``progress`` is called with the bytes read so far.
    """
    start = s.now()
    s = replace(s, clock=lambda: start)  # one "now" for the whole file
    result = ImportResult()
    with ExitStack() as stack:
        raw = stack.enter_context(source.open("rb")) if isinstance(source, Path) else source
        text = _lines(raw)
        try:
            header = next(csv.reader(text, delimiter=options.delimiter, strict=True))
        except (StopIteration, csv.Error, UnicodeDecodeError):
            raise ImportFailed(result, "the file has no readable CSV header row") from None
        mapping = apply_overrides(default_mapping(header, options.layout), options.overrides)
        columns = _resolve(mapping, header, s)
        result.layout = mapping.layout
        session = None if options.dry_run else stack.enter_context(store.writing())
        if session is not None:
            lock_events_for_import(session)
        _read_all(text, raw, header, columns, options, s, result, session, progress)
        if result.error_count:
            raise ImportFailed(result)  # leaving the writing() block rolls every row back
        result.stored = session is not None
    return result


def _read_all(
    text: Iterator[str],
    raw: BinaryIO,
    header: Sequence[str],
    columns: _Columns,
    options: ImportOptions,
    s: Settings,
    result: ImportResult,
    session: Any,
    progress: Callable[[int], None],
) -> None:
    """Check every row; store each while no row has failed."""
    number = 1
    try:
        for number, cells in _rows(text, options.delimiter):
            progress(raw.tell())
            if number == 2 and columns.mapping.skip_second_row and _is_hxl(cells):
                continue
            result.rows += 1
            if len(cells) != len(header):
                result.add_error(RowError(number, "", f"the row has {len(cells)} fields, the header {len(header)}"))
                continue
            _one_row(number, cells, columns, options, s, result, session)
    except (csv.Error, UnicodeDecodeError) as exc:
        problem = "the file is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else "malformed CSV"
        result.add_error(RowError(number + 1, "", f"{problem}; reading stopped here"))


def _one_row(
    number: int,
    cells: Sequence[str],
    columns: _Columns,
    options: ImportOptions,
    s: Settings,
    result: ImportResult,
    session: Any,
) -> None:
    try:
        action = _status(columns, cells)
        if action == SKIP:
            result.skipped += 1
            return
        checked = _check(columns, cells, s, result)
    except _RowProblem as problem:
        result.add_error(RowError(number, problem.column, problem.message))
        return
    policy = s.policies[checked.category]
    held = options.hold_all or action == HOLD or policy.premoderation
    result.imported += 1
    result.held += held
    if session is not None and not result.error_count:
        standing = Standing(trusted=False, hold=Hold.PREMODERATION if held else None)
        _, receipt = store_checked(session, checked, s, standing, category_locked=True)
        result.merged += receipt.merged
