"""The map with tiles in a real browser: however a person zooms and pans, no tile is refused.

The tile proxy serves only the service area's box (plus a margin) at its zoom levels; the map
page is told the same, so Leaflet never asks for a tile outside them and a person never sees a
broken one. A fake upstream on loopback serves real 256 px PNGs.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mapsvc.web import tiles
from tests.browser.conftest import Service, served_app, shot


def solid_png(size: int = 256) -> bytes:
    """Return a real PNG of one pale blue (unlike the map's grey background), ``size`` pixels square."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xc8\xdc\xf0" * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def tiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Serve mapsvc with tiles from a fake upstream; no rate limits (the test counts refusals)."""
    body = solid_png()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    folder = tmp_path_factory.mktemp("tiled")
    tiles.reset_upstream_state()
    app = served_app(
        folder,
        11,
        TILE_URL=f"http://127.0.0.1:{upstream.server_port}/{{z}}/{{x}}/{{y}}.png",
        TILE_CACHE_DIR=str(folder / "tiles"),
    )
    try:
        with Service(app) as running:
            yield running
    finally:
        upstream.shutdown()
        upstream.server_close()
        thread.join()
        tiles.reset_upstream_state()


def _settle(page: Any) -> None:
    page.wait_for_timeout(300)  # Leaflet's zoom and pan animations
    page.wait_for_load_state("networkidle")


def test_zooming_and_panning_to_every_edge_never_meets_a_refused_tile(page: Any, tiled: Service) -> None:
    answers: list[tuple[str, int]] = []
    page.on("response", lambda r: "/tiles/" in r.url and answers.append((r.url, r.status)))
    page.goto(tiled.url + "/")
    page.wait_for_selector("#mapsvc[data-loaded]", state="attached")
    _settle(page)
    map_js = "window[document.getElementById('mapsvc').getAttribute('data-map')]"
    limits = page.evaluate(f"() => {{ const m = {map_js}; return [m.getMinZoom(), m.getMaxZoom()]; }}")

    page.evaluate(f"() => {map_js}.setZoom(0)")  # as far out as a person can pinch
    _settle(page)
    zoomed_out = page.evaluate(f"() => {map_js}.getZoom()")
    shot(page, "tiles-zoomed-out")
    page.evaluate(f"() => {map_js}.panTo([50.45, 30.52], {{animate: false}})")  # try to drag to Kyiv
    _settle(page)
    centre = page.evaluate(f"() => {{ const c = {map_js}.getCenter(); return [c.lat, c.lng]; }}")
    corners = page.evaluate(
        f"() => {{ const b = {map_js}.options.maxBounds; const s = b.getSouth(), w = b.getWest(), "
        "n = b.getNorth(), e = b.getEast(); return [[s, w], [s, e], [n, w], [n, e]]; }"
    )
    for lat, lon in corners:  # each corner of the box, as deep as the map goes
        page.evaluate(f"() => {map_js}.setView([{lat}, {lon}], 30, {{animate: false}})")
        _settle(page)
    deepest = page.evaluate(f"() => {map_js}.getZoom()")
    shot(page, "tiles-corner-deepest")

    assert limits == [8, 18]
    assert zoomed_out == 8 and deepest == 18
    assert 42.7 < centre[0] < 43.0 and 74.4 < centre[1] < 74.8  # held inside the box, not in Kyiv
    assert len(answers) > 20
    assert [a for a in answers if a[1] != 200] == []
