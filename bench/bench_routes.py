"""Route planning speed on the Copenhagen walking network (about 18k street segments).

Prints a table of medians: reading the extract, the danger along every street from live
events, a safest route between two points 2 km or more apart, and session plans of 10 and 15
stops (shortest and safest order and legs, as POST /api/sessions computes them); then the same
through the whole service (``POST /api/routes`` and ``/api/sessions`` with an API token, on a
SQLite store with the network imported and the events reported through the API), both the first
request after a write (events read, danger computed) and repeated ones (danger cached).

    .venv/bin/python bench/bench_routes.py [--events 400] [--repeats 15]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from mapsvc import create_app
from mapsvc.core.danger import DangerEvent, street_risk
from mapsvc.core.roles import Role
from mapsvc.core.routing import cost_graph, route_between
from mapsvc.core.session_plan import plan_session
from mapsvc.services.accounts import account_policy
from mapsvc.services.osm import read_extract
from mapsvc.store.accounts import create_account
from mapsvc.store.logins import make_token

EXTRACT = Path(__file__).resolve().parents[1] / "tests" / "data" / "osm" / "copenhagen-centre.osm.pbf"
CATEGORIES = [("checkpoint", 150.0, 1.0), ("patrol", 150.0, 0.5), ("raid", 300.0, 1.0), ("attack", 500.0, 1.0)]


def timed(work: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Return the median wall time in milliseconds and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(6)
    read_ms, network = timed(lambda: read_extract(EXTRACT, "walk"), 1)
    start = time.perf_counter()
    network.sample_tree, cost_graph(network)  # built once per process, when the network loads
    warm_ms = (time.perf_counter() - start) * 1000
    nodes = rng.integers(network.node_count, size=args.events)
    events = [
        DangerEvent(float(network.lon[n]), float(network.lat[n]), c, float(rng.uniform(0.05, 1)), r)
        for n, (c, r, _) in zip(nodes, (CATEGORIES[i % 4] for i in range(args.events)), strict=True)
    ]
    weights = {c: w for c, _, w in CATEGORIES}
    risk_ms, risk = timed(lambda: street_risk(network, events, weights, math.log(4), 0.25), args.repeats)
    pairs = []
    while len(pairs) < args.repeats:
        a, b = (int(x) for x in rng.integers(network.node_count, size=2))
        if np.linalg.norm(network.xy[a] - network.xy[b]) > 2000:
            pairs.append((a, b))
    route_times = [timed(lambda p=p: route_between(network, risk, p[0], p[1], 5.0), 1)[0] for p in pairs]
    rows = [
        ("read the extract (pyrosm, walk)", read_ms),
        ("index the network (KD-trees, CSR layout)", warm_ms),
        (f"danger along every street, {args.events} events", risk_ms),
        ("safest route, >2 km apart", statistics.median(route_times)),
    ]
    for stops in (10, 15):
        chosen = [int(x) for x in rng.choice(network.node_count, size=stops + 2, replace=False)]

        def both(chosen: list[int] = chosen) -> None:
            start, end, *rest = chosen
            plan_session(network, risk, start, rest, end, 0.0)
            plan_session(network, risk, start, rest, end, 5.0)

        rows.append((f"session plan, {stops} stops (shortest + safest)", timed(both, max(3, args.repeats // 3))[0]))
    rows += service_rows(network, args, rng)
    print(f"Copenhagen walk network: {network.node_count} nodes, {network.edge_count} segments")
    print(f"{'step':<52} {'median ms':>10}")
    for name, ms in rows:
        print(f"{name:<52} {ms:>10.1f}")


def service_rows(network: Any, args: argparse.Namespace, rng: np.random.Generator) -> list[tuple[str, float]]:
    """Time the planner's API end to end on a store of its own; return the table's rows."""
    now = datetime(2026, 6, 15, 22, 30, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        config = {
            "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            "SERVICE_AREA": "copenhagen",
            "CLOCK": lambda: now,
            "RATELIMIT_ENABLED": False,
            "ARGON2_PROFILE": "CHEAPEST",
        }
        app = create_app(config)
        app.extensions["mapsvc.store"].upgrade()
        imported = app.test_cli_runner().invoke(args=["roads", "import", str(EXTRACT)])
        assert imported.exit_code == 0, imported.output
        with app.app_context(), app.extensions["mapsvc.store"].writing() as session:
            owner = create_account(
                session, "bench-planner", "a long bench pass phrase", Role.PLANNER, now, account_policy()
            )
            session.flush()
            token = make_token(session, owner, "bench", Role.PLANNER, now)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}

        def report(i: int) -> None:
            n = int(rng.integers(network.node_count))
            category = CATEGORIES[i % 4][0]
            hours = float(rng.uniform(0, 48 if category != "checkpoint" else 4))
            body = {
                "category": category,
                "lat": round(float(network.lat[n]), 4),
                "lon": round(float(network.lon[n]), 4),
                "occurred_at": (now - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "fuzzed_on_device": True,
            }
            assert client.post("/api/reports", json=body).status_code == 201

        for i in range(args.events):
            report(i)
        point = lambda n: {"lat": float(network.lat[n]), "lon": float(network.lon[n])}  # noqa: E731
        a, b = rng.choice(network.node_count, size=2, replace=False)
        route = {"from": point(a), "to": point(b), "alpha": 5}
        chosen = [int(x) for x in rng.choice(network.node_count, size=12, replace=False)]
        session_body = {"start": point(chosen[0]), "stops": [point(n) for n in chosen[1:11]], "end": point(chosen[11])}

        def post(path: str, body: dict[str, Any]) -> None:
            response = client.post(path, json=body, headers=headers)
            assert response.status_code == 200, response.get_json()

        first = []
        for i in range(args.repeats):
            report(args.events + i)  # a write: the next plan reads the events and computes the danger
            first.append(timed(lambda: post("/api/routes", route), 1)[0])
        app.extensions["mapsvc.store"].dispose()
        return [
            (f"POST /api/routes, first after a write ({args.events} events)", statistics.median(first)),
            ("POST /api/routes, repeated", timed(lambda: post("/api/routes", route), args.repeats)[0]),
            ("POST /api/sessions, 10 stops, repeated", timed(lambda: post("/api/sessions", session_body), 5)[0]),
        ]


if __name__ == "__main__":
    main()
