"""A street network as plain arrays: nodes in degrees and local metres, edges as straight segments.

Every edge joins two consecutive nodes of an OpenStreetMap way, so its shape is the straight
segment between them and its length is the great-circle distance OSM's coordinates give. The
network is what :mod:`mapsvc.services.osm` reads from an extract and :mod:`mapsvc.store.roads` keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from mapsvc.core.geodesy import equirectangular_m

#: Street samples for the danger along a street are at most this far apart, in metres.
SAMPLE_SPACING_M = 10.0

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True)
class Snap:
    """A point moved to its nearest street node: the node's index and how far it moved, in metres."""

    node: int
    distance_m: float


@dataclass(eq=False)
class StreetNetwork:
    """Nodes (``lon``, ``lat`` in degrees) and edges (``u`` to ``v``, ``length_m`` in metres).

    ``two_way`` is False for an edge that may be used only from ``u`` to ``v`` (a one-way street
    in a drivable network); a walkable network has only two-way edges. ``name`` is the street's
    OSM name (``None`` when unnamed) and ``highway`` its OSM ``highway`` value.
    """

    mode: str
    lon: Floats
    lat: Floats
    u: Ints
    v: Ints
    length_m: Floats
    two_way: NDArray[np.bool_]
    name: Sequence[str | None]
    highway: Sequence[str]
    origin: tuple[float, float] = field(init=False)

    @classmethod
    def of(
        cls,
        mode: str,
        lon: Sequence[float],
        lat: Sequence[float],
        edges: Sequence[tuple[int, int, float, bool, str | None, str]],
    ) -> StreetNetwork:
        """Return the network of node coordinates and ``(u, v, length_m, two_way, name, highway)`` edges."""
        u, v, length, two_way, name, highway = zip(*edges, strict=True) if edges else ((),) * 6
        return cls(
            mode=mode,
            lon=np.asarray(lon, dtype=float),
            lat=np.asarray(lat, dtype=float),
            u=np.asarray(u, dtype=np.int64),
            v=np.asarray(v, dtype=np.int64),
            length_m=np.asarray(length, dtype=float),
            two_way=np.asarray(two_way, dtype=bool),
            name=list(name),
            highway=list(highway),
        )

    def __post_init__(self) -> None:
        if not len(self.lon) or not len(self.u):
            raise ValueError("a street network needs at least one node and one edge")
        if not (len(self.u) == len(self.v) == len(self.length_m) == len(self.two_way) == len(self.name)):
            raise ValueError("edge arrays differ in length")
        self.origin = (float(np.mean(self.lon)), float(np.mean(self.lat)))

    @property
    def node_count(self) -> int:
        """Return the number of nodes."""
        return len(self.lon)

    @property
    def edge_count(self) -> int:
        """Return the number of edges."""
        return len(self.u)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Return (min lon, min lat, max lon, max lat) of the nodes, in degrees."""
        return (float(self.lon.min()), float(self.lat.min()), float(self.lon.max()), float(self.lat.max()))

    def to_metres(self, lon: Floats | float, lat: Floats | float) -> Floats:
        """Return points as (x, y) metres east and north of the network's centre (equirectangular).

        Over a city (tens of kilometres) the error is well under one per cent.
        """
        x, y = equirectangular_m(lon, lat, *self.origin)
        return np.column_stack([np.atleast_1d(x), np.atleast_1d(y)])

    @cached_property
    def xy(self) -> Floats:
        """Return the nodes in local metres, shape (nodes, 2)."""
        return self.to_metres(self.lon, self.lat)

    @cached_property
    def _node_tree(self) -> cKDTree:
        return cKDTree(self.xy)

    def snap(self, lon: float, lat: float) -> Snap:
        """Return the node nearest to a point and its distance in metres."""
        distance, node = self._node_tree.query(self.to_metres(lon, lat)[0])
        return Snap(int(node), float(distance))

    @cached_property
    def samples(self) -> tuple[Floats, Ints]:
        """Return points along every edge (local metres) and the edge each lies on.

        Each edge is cut into equal pieces no longer than :data:`SAMPLE_SPACING_M`; the samples
        are the pieces' midpoints, so every piece of street is represented by one sample.
        """
        pieces = np.maximum(1, np.ceil(self.length_m / SAMPLE_SPACING_M)).astype(np.int64)
        edge = np.repeat(np.arange(self.edge_count), pieces)
        starts = np.cumsum(pieces) - pieces
        fraction = (np.arange(len(edge)) - starts[edge] + 0.5) / pieces[edge]
        a, b = self.xy[self.u[edge]], self.xy[self.v[edge]]
        return a + (b - a) * fraction[:, None], edge

    @cached_property
    def sample_tree(self) -> cKDTree:
        """Return a KD-tree of :attr:`samples`."""
        return cKDTree(self.samples[0])


def largest_component(network: StreetNetwork) -> StreetNetwork:
    """Return the network reduced to its largest connected part (strongly connected if one-way streets exist).

    Every pair of nodes left can then be routed between; islands (a courtyard path mapped
    apart from the streets) would otherwise make some snapped points unreachable.
    """
    directed = not bool(np.all(network.two_way))
    n = network.node_count
    rows = np.concatenate([network.u, network.v[network.two_way]])
    cols = np.concatenate([network.v, network.u[network.two_way]])
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=directed, connection="strong")
    keep_label = np.bincount(labels).argmax()
    keep = labels == keep_label
    new_index = np.cumsum(keep) - 1
    edges = keep[network.u] & keep[network.v]
    return StreetNetwork(
        mode=network.mode,
        lon=network.lon[keep],
        lat=network.lat[keep],
        u=new_index[network.u[edges]],
        v=new_index[network.v[edges]],
        length_m=network.length_m[edges],
        two_way=network.two_way[edges],
        name=[n for n, e in zip(network.name, edges, strict=True) if e],
        highway=[h for h, e in zip(network.highway, edges, strict=True) if e],
    )
