"""``mapsvc roads``: import a city's street network from an OpenStreetMap extract, and show it."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from mapsvc.services.osm import READ_STEPS, ExtractError, read_extract
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.roads import save_network, stored_modes

roads_group = click.Group("roads", help="Street networks for route planning.")


@roads_group.command("import")
@click.argument("extract", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--drive/--no-drive", default=False, help="Also import the drivable network (one-way streets kept).")
@with_appcontext
def roads_import(extract: Path, drive: bool) -> None:
    """Read EXTRACT (.osm, .osm.gz, .osm.bz2 or .osm.pbf) and store its walkable network for routing.

    An earlier import of the same network is replaced; requests never read the file again.
    """
    from mapsvc.cli.maintenance import require_current_schema

    require_current_schema()
    for mode in ("walk", "drive") if drive else ("walk",):
        try:
            with click.progressbar(length=READ_STEPS, label=f"reading {extract.name} ({mode})") as bar:
                network = read_extract(extract, mode, lambda: bar.update(1))
        except ExtractError as exc:
            raise click.ClickException(str(exc)) from None
        rows = network.node_count + network.edge_count
        with (
            click.progressbar(length=rows, label=f"storing the {mode} network") as bar,
            get_store().writing() as session,
        ):
            save_network(session, network, extract.name, settings().now(), bar.update)
        km = network.length_m.sum() / 1000
        click.echo(f"{mode}: {network.node_count} nodes, {network.edge_count} street segments, {km:.1f} km")


@roads_group.command("show")
@with_appcontext
def roads_show() -> None:
    """List the imported street networks."""
    from mapsvc.cli.maintenance import require_current_schema

    require_current_schema()
    with get_store().reader() as session:
        found = stored_modes(session)
    if not found:
        click.echo("no street network imported: run `mapsvc roads import FILE`")
    for info in found:
        when = info.imported_at.strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"{info.mode}: {info.node_count} nodes, {info.edge_count} segments from {info.source}, {when}")
