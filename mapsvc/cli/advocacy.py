"""Command line for advocates: ``mapsvc districts import`` and ``mapsvc advocacy ...``.

The ``advocacy`` commands take the same question as the pages (``--from``, ``--to``,
``--category``, ``--perpetrator``, ``--group``, ``--resolution``, ...) and write files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from mapsvc.core.districts import DistrictFileError
from mapsvc.core.errors import MapsvcError
from mapsvc.services.advocacy.charts import KINDS, chart
from mapsvc.services.advocacy.evidence import gather, hotspots, parse_question
from mapsvc.services.advocacy.exports import DATA_FORMATS, DATA_KINDS, data_export
from mapsvc.services.advocacy.hotspot_map import offline_html
from mapsvc.services.boundaries import read_districts
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.advocacy import replace_districts

districts_group = click.Group("districts", help="Administrative districts for advocacy counts.")
advocacy_group = click.Group("advocacy", help="Hotspots, charts and exports for advocates.")


@districts_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name-field", default="name", show_default=True, help="Attribute holding the district names.")
@click.option("--layer", default=None, help="Layer of a GeoPackage with several.")
@with_appcontext
def districts_import(file: Path, name_field: str, layer: str | None) -> None:
    """Replace the districts by those of FILE (GeoJSON or GeoPackage, any CRS; stored in EPSG:4326)."""
    from mapsvc.cli.maintenance import require_current_schema

    require_current_schema()
    try:
        districts = read_districts(file, name_field, layer)
    except DistrictFileError as exc:
        raise click.ClickException(str(exc)) from exc
    hour = settings().now().replace(minute=0, second=0, microsecond=0)
    with get_store().writing() as session:
        replace_districts(session, districts, hour)
    click.echo(f"{len(districts)} districts imported")


def question_options(command: Any) -> Any:
    """Add the advocate's question as options (the page's query parameters)."""
    for name, help_text in reversed(
        [
            ("from", "First month, YYYY-MM (default: eleven months ago)."),
            ("to", "Last month, YYYY-MM (default: this month)."),
            ("category", "Categories, comma-separated (default: all)."),
            ("perpetrator", "Perpetrator types, comma-separated (default: all)."),
            ("group", "cell or district."),
            ("resolution", "H3 resolution of the cells (default: the count atoms')."),
            ("permutations", "Gi* permutations (default 9999)."),
            ("alpha", "False-discovery rate (default 0.05)."),
            ("seed", "Seed of the permutations, for repeatable hotspots."),
            ("compare-from", "First month of a period to compare with."),
            ("compare-to", "Last month of that period."),
        ]
    ):
        command = click.option(f"--{name}", name.replace("-", "_"), default=None, help=help_text)(command)
    return command


def _evidence(options: dict[str, Any], with_events: bool = False) -> Any:
    from mapsvc.cli.maintenance import require_current_schema

    require_current_schema()
    values = {key: str(value) for key, value in options.items() if value is not None}
    s = settings()
    try:
        return gather(get_store(), parse_question(values, s), s, with_events)
    except MapsvcError as exc:
        raise click.ClickException(exc.message) from exc


def _write(out: Path, data: bytes) -> None:
    out.write_bytes(data)
    click.echo(f"wrote {out} ({len(data)} bytes)")


@advocacy_group.command("export")
@click.argument("kind", type=click.Choice([*DATA_KINDS, "map"]))
@click.option("--format", "fmt", type=click.Choice([*DATA_FORMATS, "html"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@question_options
@with_appcontext
def export(kind: str, fmt: str, out: Path, **options: Any) -> None:
    """Write an export: areas or events (csv, geojson, gpkg), or the offline map (html)."""
    if (kind == "map") != (fmt == "html"):
        raise click.ClickException("--format: the map is html; areas and events are csv, geojson or gpkg")
    evidence = _evidence(options, with_events=kind != "areas")
    if kind == "map":
        _write(out, offline_html(evidence, hotspots(evidence), f"mapsvc {evidence.period_label()}"))
    else:
        _write(out, data_export(evidence, kind, fmt))


@advocacy_group.command("chart")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="A .png or .svg file.")
@question_options
@with_appcontext
def chart_command(kind: str, out: Path, **options: Any) -> None:
    """Draw a chart into a PNG or SVG file (by its suffix)."""
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in ("png", "svg"):
        raise click.ClickException("--out: the file must end in .png or .svg")
    _write(out, chart(_evidence(options), kind, fmt))


@advocacy_group.command("hotspots")
@question_options
@with_appcontext
def hotspots_command(**options: Any) -> None:
    """Print the significant hot and cold spots (Gi*, FDR) as tab-separated lines."""
    result = hotspots(_evidence(options))
    click.echo(f"# Gi* on H3 resolution {result.resolution}, ring-1 binary weights, {len(result.cells)} cells; input:")
    click.echo("# published counts only (suppressed cells count 0); two-sided pseudo p-values,")
    threshold = f"{result.fdr_threshold:.4g}"
    click.echo(f"# {result.permutations} permutations, seed {result.seed}; FDR {result.alpha} (p <= {threshold})")
    click.echo("cell\tkind\tevents\tz\tp")
    for c in sorted(result.hot + result.cold, key=lambda c: -c.z):
        click.echo(f"{c.cell}\t{c.kind}\t{c.events}\t{c.z:.3f}\t{c.p:.4f}")
