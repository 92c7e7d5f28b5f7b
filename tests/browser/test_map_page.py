"""The map page in a real browser: it draws, stays on its own origin, and stays light."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from tests.browser.conftest import record, shot

FIRST_LOAD_LIMIT = 150 * 1024
REFRESH_LIMIT = 20 * 1024


def transferred(requests) -> int:
    total = 0
    for r in requests:
        response = r.response()
        if response is None:
            continue
        sizes = r.sizes()
        total += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    return total


def test_map_draws_events_from_its_own_origin_only(page, service, watched):
    started = time.monotonic()
    page.goto(service.url + "/")
    page.wait_for_selector(".sym svg", state="attached")
    page.wait_for_selector("#mapsvc[data-loaded]", state="attached")
    drawn_s = time.monotonic() - started
    page.wait_for_load_state("networkidle")
    shot(page, "01-map")

    hosts = {urlsplit(r.url).netloc for r in watched["requests"]}
    assert hosts == {urlsplit(service.url).netloc}
    assert page.locator(".leaflet-marker-icon.sym").count() > 10
    assert watched["errors"] == []
    weight = transferred(watched["requests"])
    record("first-load", {"bytes": weight, "requests": len(watched["requests"]), "drawn_s": round(drawn_s, 3)})
    assert weight <= FIRST_LOAD_LIMIT
