"""In a real browser: district names that are code stay text for an admin, on the page and offline.

An advocate's account imports districts named with code (``tests.security.test_escaping``); an
admin opens ``/advocacy/``, and then the offline map from ``file://``, where no CSP holds, and
moves the mouse over each district. Nothing of the names runs, and the tooltip shows each name
as it was written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from mapsvc.core.roles import Role
from tests.browser.conftest import Service, served_app
from tests.helpers import PASSWORD, make_account, sign_in
from tests.security.test_escaping import PAYLOADS, feature_collection, seed_districts
from tests.test_advocacy_data import upload

#: The raids' months (one tooltip per district, over the counts) and months without events (the
#: outlines alone). 99 permutations cannot reach the false-discovery rate of 0.001: no hot or
#: cold spot lies over a district.
BUSY = "?from=2026-05&to=2026-06&group=district&permutations=99&alpha=0.001&seed=1"
EMPTY = "?from=2025-01&to=2025-02&group=district&permutations=99&alpha=0.001&seed=1"
#: The districts' counts, and their outlines.
LAYERS = {BUSY: "path.leaflet-interactive[fill-opacity='0.7']", EMPTY: "path.leaflet-interactive[stroke-dasharray]"}
FLAGS = "() => Object.keys(window).filter(k => k.startsWith('__pwned'))"


@pytest.fixture(scope="module")
def hostile_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Serve an app whose districts an advocate named :data:`PAYLOADS`, with raids in each; and an admin."""
    app = served_app(tmp_path_factory.mktemp("xss"), 11, INTAKE_ANSWER_MS=0)
    client = app.test_client()
    seed_districts(client, len(PAYLOADS))
    token = sign_in(client, app, Role.ADVOCATE)
    response = upload(client, token, "/advocacy/data/districts", feature_collection(PAYLOADS), "rayons.geojson")
    assert response.status_code == 200, response.get_data(as_text=True)
    make_account(app, Role.ADMIN, "admin-xss")
    with Service(app) as running:
        yield running


@pytest.fixture
def admin_page(page: Any, hostile_service: Service) -> Any:
    """Sign the admin in through the real form; return the page."""
    page.goto(hostile_service.url + "/login")
    page.fill("input[name=username]", "admin-xss")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/account"))
    return page


def tooltip_names(page: Any, layer: str) -> list[str]:
    """Move the mouse over each path of ``layer``, as a person would; return the name each tooltip shows.

    Outlines are thin dashed lines: the mouse goes along the top edge until the tooltip opens.
    """
    names = []
    paths = page.locator(layer)
    for i in range(paths.count()):
        path = paths.nth(i)
        path.scroll_into_view_if_needed()
        box = path.bounding_box()
        tooltip = page.locator(".leaflet-tooltip td").first
        spots = [(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)]
        if "stroke-dasharray" in layer:
            spots = [(box["x"] + box["width"] * 0.3 + dx, box["y"] + dy) for dy in (0.75, 0.5, 1) for dx in range(12)]
        for x, y in spots:
            page.mouse.move(x, y)
            if tooltip.is_visible():
                break
        names.append(tooltip.text_content())
        page.mouse.move(0, 0)
        tooltip.wait_for(state="detached")
    return names


def opened(page: Any, url: str) -> list[str]:
    """Open ``url``; return the list that collects the page's script errors and CSP refusals from now on."""
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return errors


@pytest.mark.parametrize("question", [BUSY, EMPTY])
def test_an_admin_sees_district_names_as_text_on_the_advocacy_page(admin_page, hostile_service, question):
    page = admin_page
    errors = opened(page, hostile_service.url + "/advocacy/" + question)

    assert (page.evaluate(FLAGS), errors) == ([], [])  # nothing ran, and the CSP refused nothing
    page.wait_for_selector(LAYERS[question], state="attached")
    assert sorted(tooltip_names(page, LAYERS[question])) == sorted(PAYLOADS)
    assert (page.evaluate(FLAGS), errors) == ([], [])


@pytest.mark.parametrize("question", [BUSY, EMPTY])
def test_the_offline_map_shows_district_names_as_text(admin_page, hostile_service, browser, tmp_path, question):
    download = admin_page.request.get(hostile_service.url + "/advocacy/exports/map.html" + question)
    assert download.ok and download.headers["content-disposition"].startswith("attachment")
    path = tmp_path / "mapsvc-map.html"
    path.write_bytes(download.body())

    context = browser.new_context(offline=True)
    offline = context.new_page()
    errors = opened(offline, path.as_uri())

    assert (offline.evaluate(FLAGS), errors) == ([], [])  # no CSP here: the file alone keeps names text
    offline.wait_for_selector(LAYERS[question], state="attached")
    assert sorted(tooltip_names(offline, LAYERS[question])) == sorted(PAYLOADS)
    assert (offline.evaluate(FLAGS), errors) == ([], [])
    context.close()
