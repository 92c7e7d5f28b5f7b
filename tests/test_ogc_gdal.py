"""GDAL's own OGC API – Features client (``ogrinfo``/``ogr2ogr`` OAPIF, Debian's gdal-bin) reads a real server.

``mapsvc serve`` runs on a free loopback port on each engine; reports are posted over HTTP; GDAL
must list exactly the collections of the categories shown as single events, count their
features, and read them page by page and with a bounding box, equal to ``/api/layers``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mapsvc.core.policy import DEFAULT_POLICIES
from tests.conftest import BISHKEK
from tests.servers import request, serving

LAT, LON = BISHKEK
MARKER_CATEGORIES = [name for name, p in DEFAULT_POLICIES.items() if p.public_markers]
CHECKPOINTS = 12


@pytest.fixture(scope="module")
def server(migrated_template, tmp_path_factory) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """Run ``mapsvc serve`` on a fresh database, once per engine; yield its port once healthy."""
    assert shutil.which("ogrinfo"), "GDAL's ogrinfo is missing: scripts/test.sh installs Debian's gdal-bin"
    tmp_path = tmp_path_factory.mktemp("ogc-server")
    url = migrated_template.fresh(tmp_path)
    try:
        with serving(url, tmp_path / "server.log", BURST_HOLD="") as port:
            yield port
    finally:
        migrated_template.drop(url)


@pytest.fixture(scope="module")
def reported(server) -> int:  # type: ignore[no-untyped-def]
    """Post checkpoints on a grid (no two merge), raids and attacks; return the port."""
    points = [(LAT - 0.04 + 0.01 * (i // 4), LON - 0.03 + 0.015 * (i % 4)) for i in range(CHECKPOINTS)]
    bodies = [{"category": "checkpoint", "lat": lat, "lon": lon} for lat, lon in points]
    bodies += [{"category": "raid", "lat": LAT + 0.02, "lon": LON + 0.03 * i} for i in range(-1, 2)]
    bodies += [{"category": "attack", "lat": LAT, "lon": LON} for _ in range(4)]
    for body in bodies:
        status, answer = request(server, "POST", "/api/reports", {**body, "fuzzed_on_device": True})
        assert status == 201, answer
    return int(server)


def _gdal(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _layer_features(port: int, **params: str) -> dict[str, list[float]]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    status, body = request(port, "GET", f"/api/layers?{query}")
    assert status == 200
    return {f["id"]: f["geometry"]["coordinates"] for f in body["features"]}


def _read_with_ogr2ogr(port: int, tmp_path: Path, layer: str, *options: str) -> dict[str, list[float]]:
    out = tmp_path / f"{layer}.geojson"
    out.unlink(missing_ok=True)
    source = f"OAPIF:http://127.0.0.1:{port}/ogc"
    _gdal("ogr2ogr", "-f", "GeoJSON", str(out), source, layer, "-oo", "PAGE_SIZE=5", *options)
    features = json.loads(out.read_text())["features"]
    return {f["properties"]["id"]: f["geometry"]["coordinates"] for f in features}


def test_ogrinfo_lists_the_public_collections_and_counts_them(reported):
    summary = _gdal("ogrinfo", "-ro", "-al", "-so", f"OAPIF:http://127.0.0.1:{reported}/ogc")
    assert re.findall(r"^Layer name: (\w+)$", summary, re.M) == MARKER_CATEGORIES
    counts = dict(re.findall(r"^Layer name: (\w+)$.*?^Feature Count: (\d+)$", summary, re.M | re.S))
    assert counts["checkpoint"] == str(CHECKPOINTS) and counts["raid"] == "3"
    assert "attack" not in summary
    for field in ("category", "perpetrator", "bucket_start", "weight", "corroborations", "trust"):
        assert re.search(rf"^{field}: ", summary, re.M)


def test_ogr2ogr_reads_every_page_as_the_layers_show_them(reported, tmp_path):
    read = _read_with_ogr2ogr(reported, tmp_path, "checkpoint")  # 12 features in pages of 5
    assert read == _layer_features(reported, category="checkpoint")
    assert len(read) == CHECKPOINTS


def test_ogr2ogr_bbox_reads_what_the_layers_show_in_it(reported, tmp_path):
    box = (LON - 0.02, LAT - 0.035, LON + 0.02, LAT - 0.005)
    read = _read_with_ogr2ogr(reported, tmp_path, "checkpoint", "-spat", *map(str, box))
    expected = _layer_features(reported, category="checkpoint", bbox=",".join(map(str, box)))
    assert read == expected and 0 < len(read) < CHECKPOINTS
