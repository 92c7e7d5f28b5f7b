"""What a seized phone holds: published (fuzzed) points, receipts and a queue, with no true place and no precise time.

The reports go through the real report flow in Chromium; then the whole of localStorage and
sessionStorage is read and searched for anything that points at a true place or a precise time.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from mapsvc.core.geodesy import geodesic_distance_m
from mapsvc.core.policy import DEFAULT_POLICIES
from tests.browser.conftest import PHONE, Service, served_app, shot
from tests.browser.test_fuzz_js import SEEDED_WORDS
from tests.browser.test_report_flow import open_map, posted_reports

HOME = (PHONE["latitude"], PHONE["longitude"])
#: Where the person taps the map for a report from elsewhere: about 650 m from HOME, in view.
ELSEWHERE = (PHONE["latitude"] + 0.004, PHONE["longitude"] - 0.006)

#: What an earlier version left on a phone: the true point's ~66 m cell with a millisecond time,
#: a receipt with a precise time, and a queued report with a precise time (its point is fuzzed).
OLD_QUEUED = {
    "category": "patrol",
    "lat": 42.8801,
    "lon": 74.5855,
    "fuzzed_on_device": True,
    "perpetrator": "unknown",
    "occurred_at": "2026-06-15T19:47:12Z",
}
OLD_RECEIPT = {"id": "r-old", "code": "c-old", "category": "raid", "at": "2026-06-15T13:47:12.345Z"}

#: The seeded word stream's seed, restarted on every page load. Its draws (and the reports' keys,
#: which take words from the same stream) move the points so that every true place lies 227 m or
#: more from every kept point, so a stored point within 50 m of a true one could only be a leak; and
#: the first raid lands within the reuse distance, so the second raid from the same place reuses it.
SEED = 4

DUMP = """() => {
  const keys = (s) => Array.from({length: s.length}, (_, i) => s.key(i));
  const all = (s) => Object.fromEntries(keys(s).map((k) => [k, s.getItem(k)]));
  return {local: all(localStorage), session: all(sessionStorage)};
}"""


def old_cell_key(lat: float, lon: float) -> tuple[int, int]:
    """Return the ~66 m grid cell (row, col) the old static/js/fuzz.js kept for a true point."""
    row = math.floor(lat * 111320 / 66)
    mid = math.radians((row + 0.5) * 66 / 111320)
    return row, math.floor(lon * 111320 * math.cos(mid) / 66)


def plant_old_version(page: Any) -> None:
    """Store what the old page kept, then load the page again (its reports cannot be sent yet)."""
    row, col = old_cell_key(*HOME)
    sticky = {f"{row}:{col}|0.00462098": {"lat": 42.8781, "lon": 74.5662, "t": 1781531232345}}
    page.evaluate(
        "([s, m, q]) => { localStorage.setItem('mapsvc.sticky', s); localStorage.setItem('mapsvc.mine', m);"
        " localStorage.setItem('mapsvc.queue', q); }",
        [json.dumps(sticky), json.dumps([OLD_RECEIPT]), json.dumps([OLD_QUEUED])],
    )
    page.route("**/api/reports", lambda route: route.abort())
    page.reload()
    page.wait_for_selector("#mapsvc[data-loaded]", state="attached")
    page.unroute("**/api/reports")


def tap_map(page: Any, place: tuple[float, float]) -> tuple[float, float]:
    """Tap the map at ``place``; return where the map says the tap landed (the true point)."""
    spot = page.evaluate(
        """([lat, lon]) => {
             const p = window.mapsvcMap.map.latLngToContainerPoint([lat, lon]);
             return {x: p.x, y: p.y + document.getElementById('mapsvc').getBoundingClientRect().top};
           }""",
        list(place),
    )
    page.evaluate("() => window.mapsvcMap.map.once('click', (e) => { window.tappedAt = e.latlng; })")
    page.mouse.click(spot["x"], spot["y"])
    tapped = page.evaluate("() => window.tappedAt")
    return tapped["lat"], tapped["lng"]


def report(page: Any, category: str, hours: str = "0", tap: tuple[float, float] | None = None) -> tuple:
    """Report from where the phone is (or a tapped place), as a person does, up to the last screen.

    Returns the point the preview showed and the true point.
    """
    if page.is_visible("#report-flow"):
        page.click("[data-cancel]")  # close the last report's sheet first
    page.click("#report-open")
    page.click(f"[data-category={category}]")
    if tap is None:
        page.click("[data-place=here]")
        true = HOME
    else:
        true = tap_map(page, tap)
    if hours != "0":
        page.click("[data-when=earlier]")
    page.click(f"[data-when='{hours}']")
    page.click("[data-next=preview]")
    shown = tuple(float(v) for v in page.get_attribute("#report-flow", "data-fuzzed").split(","))
    page.click("[data-send]")
    page.wait_for_function("() => !document.querySelector('[data-message=done]').textContent.endsWith('…')")
    return shown, true


def decimals(text: str) -> set[float]:
    """Return every decimal number written anywhere in ``text``."""
    return {float(x) for x in re.findall(r"-?\d+\.\d+", text)}


def test_the_phone_keeps_no_true_place_and_no_precise_time(page, service, watched):
    page.add_init_script(SEEDED_WORDS + f"window.seededWords.seed({SEED});")
    open_map(page, service)
    plant_old_version(page)
    shown, true = {}, {HOME}
    shown["raid"] = report(page, "raid")[0]
    assert report(page, "raid")[0] == shown["raid"]  # the same place again: the same point
    shown["checkpoint"], elsewhere = report(page, "checkpoint", tap=ELSEWHERE)
    true.add(elsewhere)
    page.route("**/api/reports", lambda route: route.abort())  # the connection drops
    shown["detention"] = report(page, "detention", hours="8")[0]
    assert "saved on this phone" in page.inner_text("[data-message=done]")
    assert page.is_hidden("[data-withdraw]")  # nothing to withdraw yet
    shot(page, "10-report-kept-on-phone")
    kept = page.evaluate(DUMP)
    local, text = kept["local"], json.dumps(kept)

    # Only the published points, the receipts and the queue; the old cell key is gone; no session data.
    assert set(local) == {"mapsvc.published", "mapsvc.mine", "mapsvc.queue"} and kept["session"] == {}
    delivered = [
        r for r in watched["requests"] if r.method == "POST" and r.url.endswith("/api/reports") and not r.failure
    ]
    sent = [(r.post_data_json["lat"], r.post_data_json["lon"]) for r in delivered]
    # The report the old version saved goes first, as soon as the service answers; then the same
    # place, the same point.
    assert sent == [(OLD_QUEUED["lat"], OLD_QUEUED["lon"]), shown["raid"], shown["raid"], shown["checkpoint"]]
    assert json.loads(local["mapsvc.published"]) == {
        c: [{"lat": shown[c][0], "lon": shown[c][1]}] for c in ("raid", "checkpoint", "detention")
    }
    # Every coordinate kept anywhere is one of a published point's; none is a true one.
    published = set(shown.values()) | {(OLD_QUEUED["lat"], OLD_QUEUED["lon"])}
    assert decimals(text) <= {v for point in published for v in point}
    points = np.array(sorted(published))
    for lat, lon in true:
        away = geodesic_distance_m(np.full(len(points), lat), np.full(len(points), lon), points[:, 0], points[:, 1])
        assert away.min() > 50
        row, col = old_cell_key(lat, lon)
        assert str(row) not in text and str(col) not in text

    # No time finer than a day in the receipts, and the queue's times floored to their buckets.
    assert not re.search(r"\d{10,}", text)  # no millisecond or second timestamps
    receipts = json.loads(local["mapsvc.mine"])
    assert receipts[0]["id"] == "r-old" and len(receipts) == 5  # the old receipt, the old queued report's, three new
    # The person still sees which reports they can withdraw, by day.
    page.click("[data-cancel]")
    page.click("#options summary")
    listed = page.locator("#my-reports-list li").all_inner_texts()
    assert [item.removesuffix(" Withdraw").strip() for item in listed[1:]] == ["Patrol, today"] + [
        "Raid, today"
    ] * 2 + ["Checkpoint, today"]
    assert all(
        set(r) <= {"id", "code", "category", "day"} and re.fullmatch(r"\d{4}-\d\d-\d\d", r["day"]) for r in receipts
    )
    queued = json.loads(local["mapsvc.queue"])
    assert [q["category"] for q in queued] == ["detention"]
    for q in queued:
        seconds = datetime.fromisoformat(q["occurred_at"]).timestamp()
        assert seconds % DEFAULT_POLICIES[q["category"]].bucket_s == 0, q
    assert {t[-8:] for t in re.findall(r"T\d\d:\d\d:\d\d", text)} <= {"00:00:00", "19:00:00"}
    # What left the phone (or tried to) carried no precise time either.
    # The old queued report (twice), three new ones, the detention (and any retries of it by now).
    tried = posted_reports(watched)
    assert len(tried) >= 6 and all(r["occurred_at"].endswith(":00:00Z") for r in tried)


def test_the_oldest_published_point_within_reach_is_reused_not_the_nearest(page, service):
    open_map(page, service)
    raid = page.evaluate("() => window.mapsvcMap.policies.raid")
    # Two points published earlier, both within the reuse distance (866 m) of the true point;
    # the later one is nearer.
    older, nearer = {"lat": 42.8746, "lon": 74.5798}, {"lat": 42.8746, "lon": 74.5728}
    page.evaluate("(kept) => localStorage.setItem('mapsvc.published', JSON.stringify(kept))", {"raid": [older, nearer]})

    again = page.evaluate("([p, raid]) => window.mapsvcFuzz.publishedPoint(p[0], p[1], 'raid', raid)", [HOME, raid])

    assert again == older
    assert json.loads(page.evaluate("() => localStorage.getItem('mapsvc.published')")) == {"raid": [older, nearer]}


def test_the_list_of_published_points_is_capped_dropping_the_oldest(page, service):
    open_map(page, service)
    cap = page.evaluate("() => window.mapsvcFuzz.PUBLISHED_CAP")
    far = [{"lat": round(40 + i * 0.01, 4), "lon": 70.0} for i in range(cap)]  # hundreds of km away
    page.evaluate("(kept) => localStorage.setItem('mapsvc.published', JSON.stringify(kept))", {"raid": far})

    new = page.evaluate(
        "(p) => window.mapsvcFuzz.publishedPoint(p[0], p[1], 'raid', window.mapsvcMap.policies.raid)", HOME
    )

    kept = json.loads(page.evaluate("() => localStorage.getItem('mapsvc.published')"))["raid"]
    assert cap == 200 and len(kept) == cap
    assert kept == [*far[1:], new]


@pytest.fixture(params=[True, False], ids=["wipes", "keeps"])
def exiting(request, tmp_path) -> Iterator[tuple[Service, bool]]:
    """Serve an empty map whose quick exit wipes the phone (the default) or, turned off, does not."""
    config: dict[str, Any] = {"QUICK_EXIT_URL": "https://neutral.example/weather"}
    if not request.param:
        config["QUICK_EXIT_WIPES"] = False
    with Service(served_app(tmp_path, 13, **config)) as running:
        yield running, request.param


def test_quick_exit_wipes_what_the_phone_keeps_unless_turned_off(page, exiting):
    service, wipes = exiting
    page.route(
        "https://neutral.example/**", lambda route: route.fulfill(body="<p>weather</p>", content_type="text/html")
    )
    open_map(page, service)
    report(page, "raid")
    # The person is told what the phone keeps, and whether Exit wipes it.
    said = page.inner_text("[data-step=done] .kept-on-phone")
    assert "Never the true place, never the exact time." in said
    assert ("Exit (or the Esc key) wipes them." in said) is wipes
    page.click("[data-cancel]")
    page.route("**/api/reports", lambda route: route.abort())
    report(page, "patrol")  # waits in the queue
    page.evaluate("() => sessionStorage.setItem('mapsvc.draft', 'x')")
    before = page.evaluate(DUMP)
    assert set(before["local"]) == {"mapsvc.published", "mapsvc.mine", "mapsvc.queue"}

    page.click("#quick-exit")
    page.wait_for_url("https://neutral.example/**")
    page.goto(service.url + "/api/health")  # back on the service's origin, without its scripts

    assert page.evaluate(DUMP) == ({"local": {}, "session": {}} if wipes else before)
