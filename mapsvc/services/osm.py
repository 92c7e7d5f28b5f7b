"""Reading an OpenStreetMap extract into a :class:`~mapsvc.core.streets.StreetNetwork`.

PBF files are read with pyrosm, XML (``.osm``, ``.osm.gz``, ``.osm.bz2``) with osmnx. Both keep
the ways of the chosen network with pyrosm's filters (which follow osmnx's ``walk`` and
``drive``), so a city gives the same network in either format; every edge is one segment of a
way between two consecutive nodes, with its great-circle length.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from mapsvc.core.streets import StreetNetwork, largest_component

#: Network kinds: walkable ways (every edge both ways) and drivable ways (one-way streets kept).
MODES = ("walk", "drive")
_PYROSM_TYPES = {"walk": "walking", "drive": "driving"}
XML_SUFFIXES = (".osm", ".osm.gz", ".osm.bz2")
PBF_SUFFIXES = (".osm.pbf", ".pbf")
#: The steps :func:`read_extract` reports progress for.
READ_STEPS = 3
#: Tags the network filters and the one-way rules read from each way.
_WAY_TAGS: tuple[str, ...] = ("highway", "name", "oneway", "junction", "area", "access", "foot", "service", "sidewalk")
_WAY_TAGS += ("sidewalk:both", "sidewalk:left", "sidewalk:right", "motorcar", "motor_vehicle", "vehicle")


class ExtractError(ValueError):
    """An extract cannot be read; the message names the file and the problem."""


def kind_of(path: Path) -> str:
    """Return "pbf" or "xml" from the file name, or raise :class:`ExtractError`."""
    name = path.name.lower()
    if name.endswith(PBF_SUFFIXES):
        return "pbf"
    if name.endswith(XML_SUFFIXES):
        return "xml"
    wanted = ", ".join(PBF_SUFFIXES[:1] + XML_SUFFIXES)
    raise ExtractError(f"{path.name}: not an OpenStreetMap extract by its name (expected {wanted})")


def read_extract(path: Path, mode: str = "walk", step: Callable[[], None] = lambda: None) -> StreetNetwork:
    """Return the largest connected street network of ``mode`` in the extract at ``path``.

    ``step`` is called after each of :data:`READ_STEPS` steps, for a progress bar. Raises
    :class:`ExtractError` for a missing, empty, unreadable or streetless file.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    kind = kind_of(path)
    if not path.is_file():
        raise ExtractError(f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise ExtractError(f"{path.name}: the file is empty")
    ways = _pbf_ways(path, mode) if kind == "pbf" else _xml_ways(path, mode)
    step()
    network = _network(path, mode, ways)
    step()
    network = largest_component(network)
    step()
    return network


Way = tuple[int, int, float, Mapping[str, Any]]  # (from node id, to node id, metres, tags)
Nodes = dict[int, tuple[float, float]]  # node id: (lon, lat)


def _pbf_ways(path: Path, mode: str) -> tuple[Nodes, list[Way]]:
    import pyrosm

    try:
        nodes, edges = pyrosm.OSM(str(path)).get_network(network_type=_PYROSM_TYPES[mode], nodes=True)
    except Exception as exc:  # pyrosm raises many kinds on a damaged file
        raise ExtractError(f"{path.name}: not a readable OSM PBF file ({type(exc).__name__})") from None
    if edges is None or nodes is None or len(edges) == 0:
        raise ExtractError(f"{path.name}: holds no {mode}able streets")
    points = dict(
        zip(nodes["id"].tolist(), zip(nodes["lon"].tolist(), nodes["lat"].tolist(), strict=True), strict=True)
    )
    columns = [c for c in _WAY_TAGS if c in edges.columns]
    records = edges[columns].to_dict("records")
    found: list[Way] = [
        (int(u), int(v), float(length), {k: val for k, val in tags.items() if _present(val)})
        for u, v, length, tags in zip(edges["u"], edges["v"], edges["length"], records, strict=True)
    ]
    return points, found


def _xml_ways(path: Path, mode: str) -> tuple[Nodes, list[Way]]:
    import osmnx
    from pyrosm.config.osm_filters import get_osm_filter

    before = osmnx.settings.useful_tags_way
    osmnx.settings.useful_tags_way = list(dict.fromkeys([*before, *_WAY_TAGS]))
    try:
        graph = osmnx.graph_from_xml(path, bidirectional=False, simplify=False, retain_all=True)
    except ElementTree.ParseError as exc:
        raise ExtractError(f"{path.name}: not valid OSM XML (line {exc.position[0]})") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ExtractError(f"{path.name}: cannot be read as OSM XML ({type(exc).__name__})") from None
    except Exception as exc:  # osmnx refuses an extract without ways or nodes
        raise ExtractError(f"{path.name}: holds no streets ({type(exc).__name__})") from None
    finally:
        osmnx.settings.useful_tags_way = before
    rules = get_osm_filter(_PYROSM_TYPES[mode])
    points = {int(n): (float(d["x"]), float(d["y"])) for n, d in graph.nodes(data=True)}
    found = [
        (int(u), int(v), float(d["length"]), d)
        for u, v, d in graph.edges(data=True)
        if "highway" in d and not d.get("reversed", False) and _kept(d, rules)
    ]
    if not found:
        raise ExtractError(f"{path.name}: holds no {mode}able streets")
    return points, found


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _kept(tags: Mapping[str, Any], rules: Mapping[str, Any]) -> bool:
    """Return whether a way passes a pyrosm network filter (a dict of excluded values per tag)."""
    for key, rule in rules.items():
        if hasattr(rule, "closes"):
            if rule.closes({k: str(v) for k, v in tags.items()}):
                return False
        elif _present(tags.get(key)) and str(tags[key]) in rule:
            return False
    return True


def _direction(tags: Mapping[str, Any], mode: str) -> str:
    """Return "both", "forward" or "backward": which ways a segment may be used in ``mode``."""
    if mode == "walk":
        return "both"
    oneway = str(tags.get("oneway", "")).lower()
    if oneway == "-1":
        return "backward"
    if oneway in {"yes", "true", "1"} or tags.get("junction") in {"roundabout", "circular"}:
        return "forward"
    return "both"


def _network(path: Path, mode: str, found: tuple[Nodes, Iterable[Way]]) -> StreetNetwork:
    """Return the network of the ways' segments, its nodes numbered from 0."""
    points, ways = found
    index: dict[int, int] = {}
    edges: list[tuple[int, int, float, bool, str | None, str]] = []
    for a, b, metres, tags in ways:
        if a not in points or b not in points:
            continue  # a way cut by the extract's edge
        direction = _direction(tags, mode)
        if direction == "backward":
            a, b = b, a
        name = str(tags["name"]) if _present(tags.get("name")) else None
        edge = (index.setdefault(a, len(index)), index.setdefault(b, len(index)), metres, direction == "both")
        edges.append((*edge, name, str(tags.get("highway", "road"))))
    if not edges:
        raise ExtractError(f"{path.name}: holds no {mode}able streets")
    ids = list(index)
    return StreetNetwork.of(mode, [points[i][0] for i in ids], [points[i][1] for i in ids], edges)
