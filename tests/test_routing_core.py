"""Routing on the real OSM extracts, without an app: danger, shortest and safest routes, sessions, GPX."""

from __future__ import annotations

import bz2
import gzip
import itertools
import math
from pathlib import Path

import gpxpy
import networkx as nx
import numpy as np
import pytest

from mapsvc.core.danger import REACH, DangerEvent, StreetRisk, kernel, risk_field, street_risk
from mapsvc.core.directions import steps, turn_of
from mapsvc.core.gpx import Track, Waypoint, to_gpx
from mapsvc.core.routing import edge_costs, route_between
from mapsvc.core.session_plan import best_order, plan_session
from mapsvc.core.streets import StreetNetwork
from mapsvc.services.osm import read_extract

DATA = Path(__file__).parent / "data" / "osm"
LEVEL = math.log(4)
THRESHOLD = 0.25
WEIGHTS = {"checkpoint": 1.0, "patrol": 0.5}


@pytest.fixture(scope="module", params=["moscow-ostankino.osm.gz", "copenhagen-centre.osm.pbf"])
def network(request: pytest.FixtureRequest) -> StreetNetwork:
    return read_extract(DATA / request.param, "walk")


def far_pairs(network: StreetNetwork, count: int, seed: int, min_m: float = 1500) -> list[tuple[int, int]]:
    """Return seeded random node pairs at least ``min_m`` apart as the crow flies."""
    rng = np.random.default_rng(seed)
    pairs: list[tuple[int, int]] = []
    while len(pairs) < count:
        a, b = (int(x) for x in rng.integers(network.node_count, size=2))
        if np.linalg.norm(network.xy[a] - network.xy[b]) >= min_m:
            pairs.append((a, b))
    return pairs


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def test_edges_have_their_real_lengths(network):
    for e in np.random.default_rng(1).integers(network.edge_count, size=200):
        u, v = network.u[e], network.v[e]
        expected = haversine_m(network.lon[u], network.lat[u], network.lon[v], network.lat[v])
        assert network.length_m[e] == pytest.approx(expected, abs=0.5, rel=0.005)


def test_with_no_events_the_shortest_and_safest_routes_coincide(network):
    risk = StreetRisk.none(network, THRESHOLD)
    for a, b in far_pairs(network, 5, seed=2):
        shortest = route_between(network, risk, a, b, 0.0)
        safest = route_between(network, risk, a, b, 10.0)
        assert safest.nodes == shortest.nodes
        assert safest.in_danger_m == shortest.in_danger_m == 0


def _graph(network: StreetNetwork, costs: np.ndarray) -> nx.DiGraph:
    graph = nx.DiGraph()
    for e in range(network.edge_count):
        u, v, c = int(network.u[e]), int(network.v[e]), float(costs[e])
        for a, b in ((u, v), (v, u)) if network.two_way[e] else ((u, v),):
            if not graph.has_edge(a, b) or graph[a][b]["weight"] > c:
                graph.add_edge(a, b, weight=c)
    return graph


def test_routes_are_optimal_as_networkx_finds_them(network):
    """The route's cost equals the optimum networkx's own Dijkstra finds, for a random risk."""
    rng = np.random.default_rng(3)
    risk = StreetRisk(rng.random(network.edge_count), np.ones(network.edge_count), np.zeros(network.edge_count), 0.25)
    costs = edge_costs(network, risk, 4.0)
    graph = _graph(network, costs)
    for a, b in far_pairs(network, 3, seed=4):
        route = route_between(network, risk, a, b, 4.0)
        assert route.cost == pytest.approx(nx.dijkstra_path_length(graph, a, b), rel=1e-9)
        assert route.nodes[0] == a and route.nodes[-1] == b


def _event_on(network: StreetNetwork, node: int) -> DangerEvent:
    return DangerEvent(float(network.lon[node]), float(network.lat[node]), "checkpoint", 1.0, 150.0)


def _distance_to(network: StreetNetwork, route, event: DangerEvent) -> float:
    """Return the closest approach of the route's street samples to the event, in metres."""
    points, edge = network.samples
    on_route = np.isin(edge, route.edges)
    where = network.to_metres(event.lon, event.lat)[0]
    return float(np.linalg.norm(points[on_route] - where, axis=1).min())


def _way_round_exists(network: StreetNetwork, risk: StreetRisk, a: int, b: int) -> bool:
    """Return whether a and b are joined by streets that are nowhere in danger."""
    safe = risk.in_danger_m == 0
    graph = _graph_of(network, safe)
    return graph.has_node(a) and graph.has_node(b) and nx.has_path(graph, a, b)


def _graph_of(network: StreetNetwork, keep: np.ndarray) -> nx.Graph:
    graph = nx.Graph()
    graph.add_edges_from(zip(network.u[keep].tolist(), network.v[keep].tolist(), strict=True))
    return graph


def test_an_event_on_the_shortest_route_is_avoided_with_less_exposure_and_a_bounded_detour(network):
    alpha = 30.0  # "avoid strongly"
    avoided = 0
    for a, b in far_pairs(network, 8, seed=5, min_m=1200):
        shortest = route_between(network, StreetRisk.none(network, THRESHOLD), a, b, 0.0)
        event = _event_on(network, shortest.nodes[len(shortest.nodes) // 2])
        risk = street_risk(network, [event], WEIGHTS, LEVEL, THRESHOLD)
        exposed = route_between(network, risk, a, b, 0.0)  # the same path, now with its exposure
        safest = route_between(network, risk, a, b, alpha)
        assert exposed.nodes == shortest.nodes and exposed.in_danger_m > 0
        assert safest.in_danger_m <= exposed.in_danger_m
        if not _way_round_exists(network, risk, a, b):
            continue  # the only way passes the event (a bridge, an underpass): nothing to avoid it by
        avoided += 1
        assert safest.in_danger_m < exposed.in_danger_m
        assert _distance_to(network, safest, event) > _distance_to(network, exposed, event)
        # The detour is bounded: the safest route costs no more than the shortest one does under the same alpha.
        shortest_cost = float(edge_costs(network, risk, alpha)[list(exposed.edges)].sum())
        assert shortest.length_m <= safest.length_m <= safest.cost <= shortest_cost + 1e-6
        assert safest.length_m <= 2.0 * shortest.length_m
    assert avoided >= 5, "too few pairs had a way round the event to test anything"


def test_kernel_is_as_wide_as_the_fuzz_radius():
    r = 300.0
    values = kernel(np.array([0.0, r, REACH * r, REACH * r + 1]), r, LEVEL)
    assert values == pytest.approx([1.0, 0.25, 1 / 16, 0.0])


def test_risk_field_is_the_sum_of_the_events_kernels(network):
    rng = np.random.default_rng(6)
    nodes = rng.integers(network.node_count, size=20)
    events = [
        DangerEvent(float(network.lon[n]), float(network.lat[n]), cat, float(rng.random()), radius)
        for n, (cat, radius) in zip(nodes, itertools.cycle([("checkpoint", 150.0), ("patrol", 300.0)]), strict=False)
    ]
    field = risk_field(network, events, WEIGHTS, LEVEL)
    points, _ = network.samples
    expected = np.zeros(len(points))
    for e in events:
        d = np.linalg.norm(points - network.to_metres(e.lon, e.lat)[0], axis=1)
        expected += WEIGHTS[e.category] * e.weight * kernel(d, e.radius_m, LEVEL)
    assert field == pytest.approx(expected, abs=1e-9)


def test_categories_weighted_zero_make_no_danger(network):
    event = _event_on(network, 0)
    risk = street_risk(network, [event], {"checkpoint": 0.0}, LEVEL, THRESHOLD)
    assert risk.mean.max() == 0 and risk.in_danger_m.sum() == 0


@pytest.mark.parametrize("n", range(0, 8))
def test_the_session_order_is_the_exact_optimum(n):
    rng = np.random.default_rng(10 + n)
    cost = rng.random((n + 2, n + 2)) * 1000  # asymmetric, as one-way streets make it

    def total(order):
        visit = [0, *order, n + 1]
        return sum(cost[a, b] for a, b in itertools.pairwise(visit))

    best = best_order(cost)
    assert sorted(best) == list(range(1, n + 1))
    assert total(best) == pytest.approx(min(total(p) for p in itertools.permutations(range(1, n + 1))))


def test_a_session_visits_every_stop_once_from_start_to_end(network):
    rng = np.random.default_rng(7)
    start, end, *stops = (int(x) for x in rng.choice(network.node_count, size=12, replace=False))
    event = _event_on(network, stops[0])
    risk = street_risk(network, [event], WEIGHTS, LEVEL, THRESHOLD)
    plan = plan_session(network, risk, start, stops, end, 5.0)
    assert sorted(plan.order) == list(range(len(stops)))
    visits = [start, *(stops[i] for i in plan.order), end]
    assert [leg.nodes[0] for leg in plan.legs] == visits[:-1]
    assert [leg.nodes[-1] for leg in plan.legs] == visits[1:]
    given = sum(route_between(network, risk, a, b, 5.0).cost for a, b in itertools.pairwise([start, *stops, end]))
    assert plan.route.cost <= given + 1e-6


def test_turn_kinds():
    assert [turn_of(d) for d in (0, 30, -30, 90, -90, 140, -140, 179)] == [
        "straight",
        "slight_right",
        "slight_left",
        "right",
        "left",
        "sharp_right",
        "sharp_left",
        "u_turn",
    ]


def test_turn_list_covers_the_route_with_osm_street_names(network):
    a, b = far_pairs(network, 1, seed=8)[0]
    route = route_between(network, StreetRisk.none(network, THRESHOLD), a, b, 0.0)
    found = steps(network, route)
    assert found[0].turn == "depart"
    assert sum(s.distance_m for s in found) == pytest.approx(route.length_m)
    assert all(x.name != y.name or x.highway != y.highway for x, y in itertools.pairwise(found))
    assert {s.name for s in found if s.name} <= {n for n in network.name if n}
    assert any(s.name for s in found)


def test_gpx_output_parses_back(network):
    a, b = far_pairs(network, 1, seed=9)[0]
    route = route_between(network, StreetRisk.none(network, THRESHOLD), a, b, 0.0)
    line = route.coordinates(network)
    text = to_gpx("Маршрут", [Track("Safest", [line, line[::-1]])], [Waypoint("Старт", *line[0])], "OSM contributors")
    parsed = gpxpy.parse(text)
    assert parsed.name == "Маршрут" and parsed.copyright_author == "OSM contributors"
    assert [w.name for w in parsed.waypoints] == ["Старт"]
    segment = parsed.tracks[0].segments[0]
    assert np.allclose([(p.longitude, p.latitude) for p in segment.points], line, atol=1e-9)
    assert len(parsed.tracks[0].segments) == 2
    assert parsed.tracks[0].segments[0].length_2d() == pytest.approx(route.length_m, rel=0.01)


@pytest.mark.parametrize("suffix", [".osm", ".osm.bz2"])
def test_every_xml_compression_reads_the_same_network(tmp_path, suffix):
    xml = gzip.decompress((DATA / "moscow-ostankino.osm.gz").read_bytes())
    path = tmp_path / f"moscow{suffix}"
    path.write_bytes(bz2.compress(xml) if suffix == ".osm.bz2" else xml)
    reference = read_extract(DATA / "moscow-ostankino.osm.gz", "walk")

    network = read_extract(path, "walk")

    assert (network.node_count, network.edge_count) == (reference.node_count, reference.edge_count)
    assert network.length_m.sum() == pytest.approx(reference.length_m.sum())
