"""The map page in a real browser: it draws, stays on its own origin, and stays light."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import PHONE, record, shot
from tests.conftest import NOW
from tests.helpers import read_stale_s_later

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


def layer_refresh(page) -> list:
    """Run the map's own refresh to its end; return the last /api/layers and /api/heat responses."""
    page.wait_for_load_state("networkidle")  # no refresh of the map's own still under way
    seen: list = []

    def keep(response) -> None:
        seen.append(response)

    page.on("response", keep)
    page.evaluate("() => window.mapsvcMap.refresh()")
    page.remove_listener("response", keep)
    return [[r for r in seen if f"/api/{kind}?" in r.url][-1] for kind in ("layers", "heat")]


def post_report(service, occurred_at: datetime) -> None:
    """Post a raid 2 km north of the phone (as if fuzzed there), away from the report tests' raids."""
    body = {
        "category": "raid",
        "lat": round(PHONE["latitude"] + 0.02, 4),
        "lon": round(PHONE["longitude"], 4),
        "occurred_at": occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fuzzed_on_device": True,
    }
    request = urllib.request.Request(
        service.url + "/api/reports", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 201


def test_a_layer_refresh_of_the_city_is_light_and_unchanged_ones_are_304(page, service, watched):
    page.goto(service.url + "/")
    page.wait_for_selector("#mapsvc[data-loaded]", state="attached")
    page.wait_for_load_state("networkidle")
    first = transferred([r for r in watched["requests"] if "/api/" in r.url])

    for hours in range(3):  # three raids an hour apart: three events, enough for a heat cell to change
        post_report(service, NOW - timedelta(hours=hours))
    read_stale_s_later(service.app)  # the refresh comes once the answers kept before have expired
    changed = layer_refresh(page)
    unchanged = layer_refresh(page)

    # The heat changes too unless a new raid merged into an older event nearby.
    assert changed[0].status == 200 and changed[1].status in (200, 304)
    assert all(r.headers.get("content-encoding") == "gzip" for r in changed if r.status == 200)
    assert [r.status for r in unchanged] == [304, 304]
    refresh = transferred([r.request for r in changed])
    record(
        "refresh",
        {
            "first_layers_and_heat_bytes": first,
            "changed_refresh_bytes": refresh,
            "heat_changed": changed[1].status == 200,
            "unchanged_refresh_bytes": transferred([r.request for r in unchanged]),
            "events_shown": page.evaluate("() => document.querySelectorAll('.leaflet-marker-icon.sym').length"),
        },
    )
    assert refresh <= REFRESH_LIMIT


#: Hides one symbol's badge, whatever the engine reports as the content of a missing ::after.
NO_BADGE_RULE = ".badge-probe-off::after { display: none !important; }"

#: The symbol and the corner around it, where a badge is drawn (10 px past its box on every side).
CLIP_AROUND_SYMBOL = """el => {
    const box = el.getBoundingClientRect();
    return {x: box.left - 10, y: box.top - 10, width: box.width + 20, height: box.height + 20};
}"""


def badge_drawn(page, symbol) -> bool:
    """Return whether a badge is drawn on ``symbol``: its pixels change when only its ::after is hidden.

    Compares what the person sees (the symbol and the corner where a badge sits) rather than
    the computed ``content`` string, which engines report differently for a missing ::after.
    The map may redraw its symbols meanwhile (its refresh): the probe is then made again on the
    new one.
    """
    for attempt in range(3):
        try:
            symbol.scroll_into_view_if_needed()
            clip = symbol.evaluate(CLIP_AROUND_SYMBOL)
            shown = page.screenshot(clip=clip, animations="disabled")
            symbol.evaluate("el => el.classList.add('badge-probe-off')")
            hidden = page.screenshot(clip=clip, animations="disabled")
            symbol.evaluate("el => el.classList.remove('badge-probe-off')")
            return shown != hidden
        except PlaywrightError:  # the symbol was redrawn under the probe
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def test_trust_marks_only_what_is_more_than_unverified_and_the_legend_says_so(page, service):
    page.goto(service.url + "/")
    page.wait_for_selector("#mapsvc[data-loaded]", state="attached")
    page.wait_for_load_state("networkidle")
    # CSSOM, not a <style> element: the page's Content-Security-Policy refuses inline styles.
    page.evaluate(f"() => document.styleSheets[0].insertRule({json.dumps(NO_BADGE_RULE)})")

    def symbols(trust: str):
        found = page.locator(f".leaflet-marker-icon.sym.trust-{trust}")
        assert found.count() >= 3, trust
        return [found.nth(i) for i in range(3)]

    # Most events: no badge to clutter the map. The corroborated ones show that the probe sees a badge.
    assert [badge_drawn(page, s) for s in symbols("unverified")] == [False] * 3
    assert [badge_drawn(page, s) for s in symbols("corroborated")] == [True] * 3
    page.click("#options summary")
    key = page.inner_text(".trust-key")
    assert "several people" in key and "trusted person" in key and "not verified" in key
