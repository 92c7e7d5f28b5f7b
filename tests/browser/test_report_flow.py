"""The 30-second report in a real browser: fuzzed on the phone, queued offline; quick exit; near me."""

from __future__ import annotations

import json
import math

import pytest

from mapsvc.core.fuzz import inverse_radial_cdf
from mapsvc.core.geodesy import WGS84
from tests.browser.conftest import PHONE, shot


def open_map(page, service):
    page.goto(service.url + "/")
    page.wait_for_selector("#mapsvc[data-loaded]", state="attached")


def posted_reports(watched):
    return [
        json.loads(r.post_data) for r in watched["requests"] if r.method == "POST" and r.url.endswith("/api/reports")
    ]


#: Every random 32-bit word the page draws is this: each uniform is then 0.5 (to 2^-26), so the
#: phone moves the point due south (bearing 180°) by the median displacement.
HALF = 0x80000000


def test_a_report_made_by_tapping_the_map_is_fuzzed_on_the_phone(page, service, watched):
    page.add_init_script(f"crypto.getRandomValues = (words) => words.fill({HALF});")
    open_map(page, service)
    page.click("#report-open")
    shot(page, "02-report-category")
    page.click("[data-category=checkpoint]")
    shot(page, "03-report-place")
    spot = page.evaluate(
        """([lat, lon]) => {
             const p = window.mapsvcMap.map.latLngToContainerPoint([lat, lon]);
             return {x: p.x, y: p.y + document.getElementById('mapsvc').getBoundingClientRect().top};
           }""",
        [PHONE["latitude"] + 0.004, PHONE["longitude"] - 0.006],
    )
    # Where the map says the tap landed: its own click event, as the report flow receives it.
    page.evaluate("() => window.mapsvcMap.map.once('click', (e) => { window.tappedAt = e.latlng; })")
    page.mouse.click(spot["x"], spot["y"])
    tapped = page.evaluate("() => window.tappedAt")
    shot(page, "04-report-when")
    page.click("[data-when='0']")
    shot(page, "05-report-details")
    page.select_option("#flow-perpetrator", "police")
    page.click("[data-next=preview]")
    shot(page, "06-report-preview")
    page.click("[data-send]")
    page.wait_for_function("() => !document.querySelector('[data-message=done]').textContent.endsWith('…')")
    shot(page, "07-report-done")
    assert page.inner_text(".code"), page.inner_text("[data-message=done]")

    [sent] = posted_reports(watched)
    assert sent["fuzzed_on_device"] is True and sent["category"] == "checkpoint" and sent["perpetrator"] == "police"
    assert sent["lat"] == round(sent["lat"], 4) and sent["lon"] == round(sent["lon"], 4)
    # The phone applied the mechanism: the median distance, due south (4-decimal rounding
    # moves the point by at most ~8 m; the sphere and the ellipsoid differ by well under that).
    epsilon = math.log(4) / 150
    bearing, _, moved = WGS84.inv(tapped["lng"], tapped["lat"], sent["lon"], sent["lat"])
    assert moved == pytest.approx(float(inverse_radial_cdf(0.5, epsilon)), abs=10)
    assert abs(abs(bearing) - 180) < 4
    assert {r.url.split("/")[2] for r in watched["requests"]} == {service.url.split("/")[2]}
    assert watched["errors"] == []

    page.click("[data-withdraw]")
    page.wait_for_function("() => !document.querySelector('.code').textContent")
    assert any(r.method == "DELETE" for r in watched["requests"])


#: A fixed but ever-changing word sequence: every draw differs from the last (so only reuse of a
#: published point can make two reports share a point), and the run is the same on every machine.
STEPPING = """
  let word = 0x6a09e667;
  crypto.getRandomValues = (words) => {
    for (let i = 0; i < words.length; i++) { word = (Math.imul(word, 1664525) + 1013904223) >>> 0; words[i] = word; }
    return words;
  };
"""


def test_reports_from_the_same_place_reuse_the_fuzzed_point(page, service, watched):
    page.add_init_script(STEPPING)
    open_map(page, service)
    for _ in range(2):
        page.click("#report-open")
        page.click("[data-category=raid]")
        page.click("[data-place=here]")
        page.click("[data-when='0']")
        page.click("[data-next=preview]")
        page.click("[data-send]")
        page.wait_for_selector(".code:not(:empty)")
        page.click("[data-cancel]")

    first, second = posted_reports(watched)
    assert (first["lat"], first["lon"]) == (second["lat"], second["lon"])
    assert (first["lat"], first["lon"]) != (round(PHONE["latitude"], 4), round(PHONE["longitude"], 4))
    # The phone keeps the point it published, per category, never the true point. (Compare whole
    # points: one fuzzed coordinate may well round to the true one's four decimals when the draw
    # moved the point mostly along the other axis.)
    stored = json.loads(page.evaluate("() => localStorage.getItem('mapsvc.published')"))
    assert stored == {"raid": [{"lat": first["lat"], "lon": first["lon"]}]}


def test_a_report_made_offline_is_kept_and_sent_later(page, context, service, watched):
    open_map(page, service)
    context.set_offline(True)
    page.click("#report-open")
    page.click("[data-category=patrol]")
    page.click("[data-place=here]")
    page.click("[data-when=earlier]")
    page.click("[data-when='3']")
    page.click("[data-next=preview]")
    page.click("[data-send]")
    page.wait_for_function("() => JSON.parse(localStorage.getItem('mapsvc.queue') || '[]').length === 1")
    shot(page, "08-report-queued")
    assert posted_reports(watched) == []

    context.set_offline(False)
    page.wait_for_function("() => JSON.parse(localStorage.getItem('mapsvc.queue') || '[]').length === 0")
    [sent] = posted_reports(watched)
    # Three hours ago, floored to the patrol's hour as the server would: no precise time is sent.
    assert sent["fuzzed_on_device"] is True and sent["occurred_at"].endswith(":00:00Z")
    [post] = [r for r in watched["requests"] if r.method == "POST" and r.url.endswith("/api/reports")]
    assert post.response().status == 201, post.response().text()  # accepted, not dropped as refused
    page.wait_for_function("() => document.getElementById('map-status').textContent === 'Your saved report was sent.'")
    page.wait_for_timeout(1000)  # the map's refresh after sending has come back by now, and did not replace it
    assert page.inner_text("#map-status") == "Your saved report was sent."


def test_a_saved_report_the_service_refuses_is_not_dropped_silently(page, context, service, watched):
    open_map(page, service)
    context.set_offline(True)
    page.click("#report-open")
    page.click("[data-category=patrol]")
    page.click("[data-place=here]")
    page.click("[data-when='0']")
    page.click("[data-next=preview]")
    page.click("[data-send]")
    page.wait_for_function("() => JSON.parse(localStorage.getItem('mapsvc.queue') || '[]').length === 1")

    # By the time the phone is online again the service refuses it (its area or policy changed,
    # say): the service's answer is stood in for, as the page cannot tell the difference.
    refusal = {"error": "lat: the point lies outside the service area", "field": "lat"}
    page.route("**/api/reports", lambda route: route.fulfill(status=422, json=refusal))
    context.set_offline(False)
    page.wait_for_function("() => JSON.parse(localStorage.getItem('mapsvc.queue') || '[]').length === 0")
    assert page.inner_text("[data-message=done]") == "The report was not accepted: " + refusal["error"]
    # On the map too, until the person dismisses it (tests/browser/test_phone_queue.py).
    said = "A report (Patrol) was not accepted and will not be sent again: " + refusal["error"]
    assert page.inner_text("#outbox-refused-list") == said


def test_quick_exit_replaces_the_page(page, service):
    exits = []
    page.route(
        "https://neutral.example/**",
        lambda route: (exits.append(route.request.url), route.fulfill(body="<p>weather</p>", content_type="text/html")),
    )
    page.goto("about:blank")
    open_map(page, service)

    page.keyboard.press("Escape")
    page.wait_for_url("https://neutral.example/**")

    assert exits == ["https://neutral.example/weather"]
    page.go_back()
    assert not page.url.startswith(service.url)


def test_near_me_never_sends_the_location(page, service, watched):
    open_map(page, service)
    page.click("#near-me")
    page.wait_for_selector("#near-list li")
    shot(page, "09-near-me")

    for request in watched["requests"]:
        assert f"{PHONE['latitude']:.3f}" not in request.url and f"{PHONE['longitude']:.3f}" not in request.url
