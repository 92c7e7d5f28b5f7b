"""``mapsvc serve``: the app under gunicorn, with the write lane and the intake worker."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from mapsvc.cli.accounts import require_usable_secrets
from mapsvc.cli.maintenance import require_current_schema
from mapsvc.server import worker_counts
from mapsvc.settings import settings
from mapsvc.store import get_store
from mapsvc.store.db import POOL_OVERFLOW, POOL_SIZE

#: Threads of each worker's write lane (mapsvc.server.lanes): 80 reports a second at 200 ms each (INTAKE_ANSWER_MS).
WRITE_THREADS = 16


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Threads for reads.")
@click.option(
    "--write-threads",
    default=WRITE_THREADS,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads for requests that change something (reports first): reads never queue ahead of them.",
)
@click.option(
    "--intake-worker/--no-intake-worker",
    default=None,
    help="One more worker that takes every request that changes something, so that reports never "
    "wait for reads [default: on unless the limits count in each process's memory].",
)
@with_appcontext
def serve(host: str, port: int, workers: int, threads: int, write_threads: int, intake_worker: bool | None) -> None:
    """Run the service with gunicorn; no access log is written.

    Several workers need limit storage they share (RATELIMIT_STORAGE_URI): with "memory://"
    each would count apart, and serve refuses to start. The intake worker is one more.
    """
    limits = settings().limits
    intake = not worker_counts.counted_per_worker(limits) if intake_worker is None else intake_worker
    refused = worker_counts.refusal(limits, workers, intake)
    if refused is not None:
        raise click.ClickException(refused)
    require_current_schema()
    require_usable_secrets()
    from gunicorn.app.base import BaseApplication

    from mapsvc.server.handover import Meeting
    from mapsvc.server.lanes import lane_worker  # gunicorn's threaded worker takes a tenth of a second to import

    # Flask types current_app as the app it stands for, so mypy does not know the proxy's method.
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    store = get_store()
    allowed = store.connections_allowed()
    most = (workers + intake) * (POOL_SIZE + POOL_OVERFLOW)
    if allowed is not None and allowed < most:
        click.echo(
            f"warning: {workers + intake} workers may open up to {most} PostgreSQL connections at once, and the server "
            f"allows {allowed}: raise max_connections, or serve with fewer --workers",
            err=True,
        )
    # Workers are forked from this process: none may inherit (and so share) its connections.
    store.dispose()

    # Where the workers hand reports to the intake worker (mapsvc.server.handover): made before they fork.
    meeting = Meeting() if intake else None

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {
                "bind": f"{host}:{port}",
                "workers": workers + intake,
                "threads": threads,
                "accesslog": None,
                "worker_class": lane_worker(write_threads, meeting),  # gthread with a write lane, errors in JSON
                "post_fork": lambda _server, _worker: store.engine.dispose(close=False),
            }.items():
                self.cfg.set(key, value)
            # Recent gunicorn releases open a control socket at one fixed path in the home directory,
            # which a second server on the machine replaces and unlinks; mapsvc does not use it.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Flask:
            return app

    click.echo(f"mapsvc serving on http://{host}:{port}/")
    _Server().run()
