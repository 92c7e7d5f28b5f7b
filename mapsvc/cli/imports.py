"""``mapsvc import``: bring existing documentation (CSV, Ushahidi's CSV export) into the map."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from mapsvc.services.imports.mapping import MappingError, pairs, read_mapping_file
from mapsvc.services.imports.run import ImportFailed, ImportOptions, ImportResult, run_import
from mapsvc.settings import settings
from mapsvc.store import get_store


def _overrides(mapping_file: Path | None, columns: tuple[str, ...], categories: tuple[str, ...], **more: Any) -> dict:  # type: ignore[type-arg]
    """Return the mapping file's settings with the options laid over them."""
    data: dict[str, Any] = read_mapping_file(mapping_file) if mapping_file else {}
    data["columns"] = {**data.get("columns", {}), **pairs(columns, "--column")}
    data["categories"] = {**data.get("categories", {}), **pairs(categories, "--category-map")}
    data["perpetrators"] = {**data.get("perpetrators", {}), **pairs(more.pop("perpetrators"), "--perpetrator-map")}
    data.update({k: v for k, v in more.items() if v})
    return data


def _summary(result: ImportResult, dry_run: bool, failed: bool = False) -> str:
    verb = "good" if failed else "would be imported" if dry_run else "imported"
    parts = [f"{result.rows} rows read ({result.layout})", f"{result.imported} {verb}"]
    if result.stored:
        parts.append(f"{result.merged} merged into existing events")
    parts += [f"{result.held} held for a moderator", f"{result.skipped} skipped by their status"]
    return "; ".join(parts)


def _report_failure(failure: ImportFailed, dry_run: bool) -> None:
    result = failure.result
    if failure.problem:
        raise click.ClickException(f"{failure.problem}; nothing was stored")
    click.echo(_summary(result, dry_run, failed=True))
    click.echo(f"{result.error_count} bad rows (the first problem of each):")
    for error in result.errors:
        click.echo(f"  {error}")
    if result.error_count > len(result.errors):
        click.echo(f"  ... and {result.error_count - len(result.errors)} more")
    if result.unknown_categories:
        listed = ", ".join(f"{v!r} ({n})" for v, n in result.unknown_categories.most_common(20))
        click.echo(f"category values without a mapping: {listed}")
    raise click.ClickException("nothing was stored" if not dry_run else "the file has bad rows")


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "layout", type=click.Choice(["csv", "ushahidi"]), help="Default: recognised by the header.")
@click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A TOML mapping file (see docs/imports.md).",
)
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="FIELD=HEADER",
    help="Which column holds category, lat, lon, time, perpetrator or details (repeatable).",
)
@click.option(
    "--category-map",
    "categories",
    multiple=True,
    metavar="VALUE=CATEGORY",
    help="A value of the file's category column and the mapsvc category it means; empty: ignore it.",
)
@click.option(
    "--perpetrator-map",
    "perpetrators",
    multiple=True,
    metavar="VALUE=TYPE",
    help="A value of the perpetrator column and the mapsvc perpetrator type it means.",
)
@click.option("--timezone", help="IANA zone of times without an offset (default: the service's zone).")
@click.option("--time-format", help="strptime format of the times (default: ISO 8601).")
@click.option("--delimiter", default=",", show_default=True, help="The field separator.")
@click.option("--pending", is_flag=True, help="Hold every imported report for a moderator.")
@click.option("--dry-run", is_flag=True, help="Check and fuzz every row, store nothing.")
@with_appcontext
def import_command(
    file: Path,
    layout: str | None,
    mapping_file: Path | None,
    columns: tuple[str, ...],
    categories: tuple[str, ...],
    perpetrators: tuple[str, ...],
    timezone: str | None,
    time_format: str | None,
    delimiter: str,
    pending: bool,
    dry_run: bool,
) -> None:
    """Import reports from a CSV file or an Ushahidi CSV export: every row or none."""
    from mapsvc.cli.maintenance import require_current_schema

    require_current_schema()
    try:
        overrides = _overrides(
            mapping_file, columns, categories, perpetrators=perpetrators, timezone=timezone, time_format=time_format
        )
    except MappingError as exc:
        raise click.ClickException(str(exc)) from exc
    delimiter = str(overrides.pop("delimiter", delimiter))
    options = ImportOptions(layout or overrides.pop("format", None), overrides, delimiter, dry_run, pending)
    size = file.stat().st_size
    with click.progressbar(length=size, label="importing", file=sys.stderr) as bar:
        done = [0]

        def progress(position: int) -> None:
            bar.update(max(0, min(position, size) - done[0]))
            done[0] = max(done[0], min(position, size))

        try:
            result = run_import(file, options, settings(), get_store(), progress)
        except MappingError as exc:
            raise click.ClickException(f"{exc}; nothing was stored") from exc
        except ImportFailed as failure:
            bar.update(size - done[0])
            _report_failure(failure, dry_run)
            return
        bar.update(size - done[0])
    click.echo(_summary(result, dry_run))
    click.echo("dry run: nothing was stored" if dry_run else "all rows stored in one transaction")
