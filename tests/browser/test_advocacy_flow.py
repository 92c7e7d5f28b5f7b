"""An advocate in a real browser: the page, the offline map from file:// with no network, the report as PDF."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from mapsvc.core.roles import Role
from tests.browser.conftest import ARTIFACTS, shot
from tests.conftest import BISHKEK, NOW
from tests.helpers import PASSWORD, make_account
from tests.test_advocacy_cli import districts_frame

QUESTION = "?from=2026-05&to=2026-06&permutations=199&seed=1"


@pytest.fixture
def advocate_page(page, service, request):
    """Sign an advocate in through the real form; return the page."""
    make_account(service.app, Role.ADVOCATE, f"adv-{request.node.name[5:25]}")
    page.goto(service.url + "/advocacy/" + QUESTION)
    assert "/login" in page.url
    page.fill("input[name=username]", f"adv-{request.node.name[5:25]}")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/advocacy/**")
    return page


def test_the_advocate_page_draws_hotspots_and_charts_from_its_own_origin(watched, advocate_page, service):
    page = advocate_page
    page.wait_for_selector(".advocacy-map path.leaflet-interactive", state="attached")
    page.wait_for_load_state("networkidle")
    shot(page, "30-advocacy")

    assert {urlsplit(r.url).netloc for r in watched["requests"]} == {urlsplit(service.url).netloc}
    assert watched["errors"] == []
    assert page.locator("#area-table tbody tr").count() > 0
    widths = page.eval_on_selector_all(".charts img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 4 and all(w > 100 for w in widths)
    assert "Getis-Ord Gi*" in page.locator("#method").inner_text()


def test_the_offline_map_works_from_a_file_with_the_network_blocked(advocate_page, browser, tmp_path):
    page = advocate_page
    with page.expect_download() as download:
        page.click("text=Offline map (HTML)")
    path = tmp_path / "mapsvc-map.html"
    download.value.save_as(path)

    context = browser.new_context(offline=True)
    requested: list[str] = []
    context.on("request", lambda r: requested.append(r.url))
    context.route(re.compile(r"^(https?|wss?|ftp)://"), lambda route: route.abort())
    offline = context.new_page()
    errors: list[str] = []
    offline.on("pageerror", lambda e: errors.append(str(e)))
    offline.goto(path.as_uri())
    offline.wait_for_selector("path.leaflet-interactive", state="attached")

    assert errors == []
    assert [u for u in requested if not u.startswith("file:")] == []
    assert offline.locator(".leaflet-control-layers").count() == 1
    assert offline.evaluate("typeof L") == "object"
    context.close()


def test_the_report_prints_to_pdf(advocate_page):
    page = advocate_page
    page.click("#report-link")
    page.wait_for_url("**/advocacy/report**")
    page.wait_for_selector(".advocacy-map path.leaflet-interactive", state="attached")
    page.wait_for_load_state("networkidle")
    page.emulate_media(media="print")

    assert page.locator("header.bar").is_hidden()
    pdf = page.pdf(format="A4", print_background=True)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "advocacy-report.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") + pdf.count(b"/Type/Page") >= 2


def test_districts_and_past_documentation_are_imported_from_the_browser(advocate_page, service, tmp_path):
    page = advocate_page
    page.click("#data-link")
    page.wait_for_url("**/advocacy/data")
    rayons = tmp_path / "rayons.geojson"
    rayons.write_bytes(districts_frame().rename(columns={"rayon": "name"}).to_json().encode())
    page.set_input_files("form[action$='/data/districts'] input[type=file]", str(rayons))
    page.click("form[action$='/data/districts'] button")
    page.wait_for_selector("#districts-done")
    assert "Lenin, Pervomay" in page.inner_text("main")

    archive = tmp_path / "archive.csv"
    when = (NOW - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    archive.write_text(f"category,lat,lon,time\nPolice raid,{BISHKEK[0]},{BISHKEK[1]},{when}\n", encoding="utf-8")
    page.set_input_files("#import-form input[type=file]", str(archive))
    page.click("#import-form button")  # a trial run first: the box is ticked
    page.wait_for_selector("#import-error")
    assert "row 2, column 'category'" in page.inner_text("#import-error")

    page.set_input_files("#import-form input[type=file]", str(archive))
    page.fill("#import-form textarea[name=categories]", "Police raid=raid")
    page.uncheck("#import-form input[name=dry_run]")
    page.click("#import-form button")
    page.wait_for_selector("#import-done")
    shot(page, "33-advocacy-import")
    assert "1 reports imported in one transaction" in page.inner_text("#import-done")
