"""Street networks in the database: stored once by ``mapsvc roads import``, loaded once per process.

A request only checks which import is current (one row); the network's arrays are read from
the tables the first time a process needs them and again only after a new import.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from mapsvc.core.streets import StreetNetwork
from mapsvc.store.models import RoadEdge, RoadNetwork, RoadNode

#: Rows per INSERT batch when storing a network.
BATCH = 5000


@dataclass(frozen=True)
class NetworkInfo:
    """What is known of a stored network without loading it."""

    id: int
    mode: str
    source: str
    imported_at: datetime
    node_count: int
    edge_count: int


def save_network(
    session: Session, network: StreetNetwork, source: str, now: datetime, step: Callable[[int], None] = lambda _: None
) -> NetworkInfo:
    """Store ``network`` as the network of its mode, replacing an earlier import of that mode.

    ``step`` is called with the number of rows after each batch, for a progress bar.
    """
    session.execute(delete(RoadNetwork).where(RoadNetwork.mode == network.mode))
    session.flush()
    row = RoadNetwork(
        mode=network.mode,
        source=source[:255],
        imported_at=now,
        node_count=network.node_count,
        edge_count=network.edge_count,
    )
    session.add(row)
    session.flush()
    nodes = [
        {"network_id": row.id, "node": i, "lon": lon, "lat": lat}
        for i, (lon, lat) in enumerate(zip(network.lon.tolist(), network.lat.tolist(), strict=True))
    ]
    edges = [
        {
            "network_id": row.id,
            "edge": i,
            "u": u,
            "v": v,
            "length_m": length,
            "two_way": two_way,
            "name": name[:255] if name else None,
            "highway": highway[:40],
        }
        for i, (u, v, length, two_way, name, highway) in enumerate(
            zip(
                network.u.tolist(),
                network.v.tolist(),
                network.length_m.tolist(),
                network.two_way.tolist(),
                network.name,
                network.highway,
                strict=True,
            )
        )
    ]
    for table, rows in ((RoadNode, nodes), (RoadEdge, edges)):
        for start in range(0, len(rows), BATCH):
            session.execute(insert(table), rows[start : start + BATCH])
            step(len(rows[start : start + BATCH]))
    return _info(row)


def _info(row: RoadNetwork) -> NetworkInfo:
    return NetworkInfo(row.id, row.mode, row.source, row.imported_at, row.node_count, row.edge_count)


def network_info(session: Session, mode: str) -> NetworkInfo | None:
    """Return the current import of ``mode``, or None when none was imported."""
    row = session.scalars(select(RoadNetwork).where(RoadNetwork.mode == mode)).first()
    return None if row is None else _info(row)


def stored_modes(session: Session) -> list[NetworkInfo]:
    """Return every stored network, walkable first."""
    rows = session.scalars(select(RoadNetwork).order_by(RoadNetwork.mode.desc())).all()
    return [_info(r) for r in rows]


def read_network(session: Session, info: NetworkInfo) -> StreetNetwork:
    """Read a stored network's nodes and edges into arrays."""
    connection = session.connection()
    nodes = connection.execute(
        select(RoadNode.lon, RoadNode.lat).where(RoadNode.network_id == info.id).order_by(RoadNode.node)
    ).all()
    edges = connection.execute(
        select(RoadEdge.u, RoadEdge.v, RoadEdge.length_m, RoadEdge.two_way, RoadEdge.name, RoadEdge.highway)
        .where(RoadEdge.network_id == info.id)
        .order_by(RoadEdge.edge)
    ).all()
    lon, lat = zip(*nodes, strict=True)
    # Unpacked into plain tuples that keep each column's type (tuple(row) would lose them).
    return StreetNetwork.of(info.mode, lon, lat, [(u, v, m, two, name, kind) for u, v, m, two, name, kind in edges])


_LOADED: dict[tuple[str, str], tuple[tuple[int, datetime], StreetNetwork]] = {}
_LOCK = threading.Lock()


def load_network(session: Session, database: str, mode: str) -> tuple[NetworkInfo, StreetNetwork] | None:
    """Return the current network of ``mode`` (read from the tables only when not already held), or None."""
    info = network_info(session, mode)
    if info is None:
        return None
    stamp = (info.id, info.imported_at)
    with _LOCK:
        held = _LOADED.get((database, mode))
        if held is not None and held[0] == stamp:
            return info, held[1]
        network = read_network(session, info)
        _LOADED[database, mode] = (stamp, network)
    return info, network
