"""Shortest and safest routes over a street network, with their exposure to danger.

The cost of walking an edge is ``length x (1 + alpha x risk)``, with the risk averaged along
the edge (:class:`mapsvc.core.danger.StreetRisk`): alpha = 0 gives the shortest route, and a
larger alpha accepts a longer way round to stay out of danger. Paths are found with
Dijkstra's algorithm (``scipy.sparse.csgraph``), from one source to every node at once.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from mapsvc.core.danger import StreetRisk
from mapsvc.core.streets import Floats, Ints, StreetNetwork

#: Arc weights are at least this (metres): csgraph must not see a zero-length arc as missing.
_MIN_WEIGHT = 1e-6


class Unreachable(ValueError):
    """No path joins two points of the network."""


@dataclass(frozen=True)
class Route:
    """A path through the network and what walking it means.

    ``nodes`` are the node indices in order and ``edges`` the edges between them; ``length_m``
    is in metres; ``cost`` is the sum of ``length x (1 + alpha x risk)``; ``in_danger_m`` the
    metres where the risk reaches the danger threshold; ``peak_risk`` the highest risk passed.
    """

    nodes: tuple[int, ...]
    edges: tuple[int, ...]
    length_m: float
    cost: float
    in_danger_m: float
    peak_risk: float

    def coordinates(self, network: StreetNetwork) -> list[tuple[float, float]]:
        """Return the route as (lon, lat) pairs in degrees."""
        index = np.asarray(self.nodes, dtype=np.int64)
        return list(zip(network.lon[index].tolist(), network.lat[index].tolist(), strict=True))


class CostGraph:
    """The network's arcs (both directions of two-way edges) in the layout of a CSR matrix.

    Parallel edges between the same two nodes share one matrix entry, the cheaper of them
    under the request's costs; the layout is built once per network, the weights per request.
    """

    def __init__(self, network: StreetNetwork) -> None:
        both = network.two_way
        tail = np.concatenate([network.u, network.v[both]])
        head = np.concatenate([network.v, network.u[both]])
        edge = np.concatenate([np.arange(network.edge_count), np.flatnonzero(both)])
        order = np.lexsort((head, tail))
        self.n = network.node_count
        self.arc_edge: Ints = edge[order]
        key = tail[order] * self.n + head[order]
        first = np.r_[True, key[1:] != key[:-1]]
        self.pair_start: Ints = np.flatnonzero(first)
        self.pair_key: Ints = key[first]
        self.indices = head[order][first]
        self.indptr = np.searchsorted(tail[order][first], np.arange(self.n + 1))

    def matrix(self, edge_cost: Floats) -> csr_matrix:
        """Return the sparse matrix of arc weights for per-edge costs."""
        data = np.minimum.reduceat(edge_cost[self.arc_edge], self.pair_start)
        return csr_matrix((np.maximum(data, _MIN_WEIGHT), self.indices, self.indptr), shape=(self.n, self.n))

    def edge_between(self, a: int, b: int, edge_cost: Floats) -> int:
        """Return the cheapest edge that leads from node ``a`` to node ``b``."""
        pair = int(np.searchsorted(self.pair_key, a * self.n + b))
        start = self.pair_start[pair]
        stop = self.pair_start[pair + 1] if pair + 1 < len(self.pair_start) else len(self.arc_edge)
        edges = self.arc_edge[start:stop]
        return int(edges[np.argmin(edge_cost[edges])])


_GRAPHS: weakref.WeakKeyDictionary[StreetNetwork, CostGraph] = weakref.WeakKeyDictionary()


def cost_graph(network: StreetNetwork) -> CostGraph:
    """Return the network's :class:`CostGraph`, built on first use and kept while the network lives."""
    graph = _GRAPHS.get(network)
    if graph is None:
        graph = _GRAPHS[network] = CostGraph(network)
    return graph


def edge_costs(network: StreetNetwork, risk: StreetRisk, alpha: float) -> Floats:
    """Return ``length x (1 + alpha x risk)`` for every edge, in risk-weighted metres."""
    if alpha < 0:
        raise ValueError("alpha must not be negative")
    return network.length_m * (1.0 + alpha * risk.mean)


@dataclass(frozen=True)
class Trees:
    """Shortest-path trees from several source nodes under one set of edge costs."""

    sources: tuple[int, ...]
    distance: Floats
    predecessor: NDArray[np.int32]
    edge_cost: Floats


def trees_from(network: StreetNetwork, sources: Sequence[int], edge_cost: Floats) -> Trees:
    """Return the shortest-path trees from each of ``sources`` (node indices) under ``edge_cost``."""
    unique = tuple(dict.fromkeys(int(s) for s in sources))
    matrix = cost_graph(network).matrix(edge_cost)
    distance, predecessor = dijkstra(matrix, directed=True, indices=list(unique), return_predecessors=True)
    return Trees(unique, np.atleast_2d(distance), np.atleast_2d(predecessor), edge_cost)


def path_in(trees: Trees, source: int, target: int) -> list[int]:
    """Return the nodes from ``source`` to ``target`` along the tree of ``source``."""
    row = trees.predecessor[trees.sources.index(source)]
    if source != target and row[target] < 0:
        raise Unreachable("no street path joins these points")
    nodes = [target]
    while nodes[-1] != source:
        nodes.append(int(row[nodes[-1]]))
    return nodes[::-1]


def make_route(network: StreetNetwork, risk: StreetRisk, nodes: Sequence[int], edge_cost: Floats) -> Route:
    """Return the :class:`Route` along ``nodes``, taking the cheapest edge between each pair."""
    graph = cost_graph(network)
    edges = [graph.edge_between(a, b, edge_cost) for a, b in itertools.pairwise(nodes)]
    index = np.asarray(edges, dtype=np.int64)
    return Route(
        nodes=tuple(int(n) for n in nodes),
        edges=tuple(edges),
        length_m=float(network.length_m[index].sum()),
        cost=float(edge_cost[index].sum()),
        in_danger_m=float(risk.in_danger_m[index].sum()),
        peak_risk=float(risk.peak[index].max()) if edges else 0.0,
    )


def route_between(network: StreetNetwork, risk: StreetRisk, source: int, target: int, alpha: float) -> Route:
    """Return the cheapest route from node ``source`` to node ``target`` for ``alpha`` (0: the shortest)."""
    costs = edge_costs(network, risk, alpha)
    trees = trees_from(network, [source], costs)
    return make_route(network, risk, path_in(trees, source, target), costs)


def joined(routes: Sequence[Route]) -> Route:
    """Return consecutive routes (each starting where the last ended) as one."""
    nodes: list[int] = [routes[0].nodes[0]]
    for r in routes:
        nodes += r.nodes[1:]
    return Route(
        nodes=tuple(nodes),
        edges=tuple(e for r in routes for e in r.edges),
        length_m=sum(r.length_m for r in routes),
        cost=sum(r.cost for r in routes),
        in_danger_m=sum(r.in_danger_m for r in routes),
        peak_risk=max(r.peak_risk for r in routes),
    )
