"""The map page with a keyboard and a screen reader: focus order, names, the report sheet's focus, contrast."""

from __future__ import annotations

import pytest

from tests.browser.conftest import shot

#: Roles a person operates; each needs a name a screen reader can say.
CONTROLS = {"button", "link", "checkbox", "combobox", "textbox", "radio", "DisclosureTriangle", "menuitem", "slider"}

#: Finds text on the page whose contrast with what is behind it falls below WCAG AA.
LOW_CONTRAST_JS = """() => {
  const rgba = (s) => {
    const m = s.match(/[\\d.]+/g).map(Number);
    return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1];
  };
  const over = (top, below) => [0, 1, 2].map(i => top[i] * top[3] + below[i] * (1 - top[3])).concat(1);
  const lum = (c) => {
    const v = c.slice(0, 3).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) layers.push(rgba(getComputedStyle(e).backgroundColor));
    return layers.reverse().reduce((below, top) => over(top, below), [255, 255, 255, 1]);
  };
  const failures = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest("svg") || el.closest("[hidden]")) continue;
    const text = Array.from(el.childNodes).filter(n => n.nodeType === 3).map(n => n.textContent.trim()).join("");
    const box = el.getBoundingClientRect(), style = getComputedStyle(el);
    if (!text || box.width <= 1 || box.height <= 1 || style.visibility === "hidden") continue;
    const bg = background(el), fg = over(rgba(style.color), bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x), ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) failures.push(`${text.slice(0, 30)}: ${ratio.toFixed(2)}`);
  }
  return failures;
}"""


def open_map(page, service):
    page.goto(service.url + "/")
    page.wait_for_selector("#mapsvc[data-loaded]", state="attached")


def focused(page) -> str:
    """Name the focused element by its id, its language (the language links) or its tag."""
    return page.evaluate(
        "() => { const e = document.activeElement; return e.id || e.getAttribute('lang') || e.tagName.toLowerCase(); }"
    )


def unnamed_controls(page) -> list[str]:
    """Return the controls in the browser's accessibility tree that have no name."""
    session = page.context.new_cdp_session(page)
    nodes = session.send("Accessibility.getFullAXTree")["nodes"]
    session.detach()
    missing = []
    for node in nodes:
        role = node.get("role", {}).get("value")
        if node.get("ignored") or role not in CONTROLS:
            continue
        if not str(node.get("name", {}).get("value", "")).strip():
            missing.append(f"{role} {node.get('properties', [])}")
    return missing


def test_tab_goes_exit_languages_legend_near_me_report(page, service):
    open_map(page, service)
    order = []
    for _ in range(7):
        page.keyboard.press("Tab")
        order.append(focused(page))

    assert order == ["quick-exit", "ru", "ky", "en", "summary", "near-me", "report-open"]


@pytest.mark.parametrize("state", ["map", "options", "report"])
def test_every_control_has_a_name(page, service, state):
    open_map(page, service)
    if state == "map":
        page.wait_for_load_state("networkidle")
        # A popup like a symbol's, with its close button; opened in the middle, so the map does not pan.
        page.evaluate(
            "() => { const m = window.mapsvcMap.map; L.popup().setLatLng(m.getCenter()).setContent('-').openOn(m); }"
        )
        page.wait_for_selector(".leaflet-popup-close-button[aria-label]")
    elif state == "options":
        page.click("#options summary")
    else:
        page.click("#report-open")

    assert unnamed_controls(page) == []


def test_the_report_sheet_takes_focus_and_gives_it_back(page, service):
    open_map(page, service)
    page.focus("#report-open")
    page.keyboard.press("Enter")
    assert focused(page) == "flow-title"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.getAttribute('data-category')") == "checkpoint"

    page.focus("[data-cancel]")
    page.keyboard.press("Enter")
    assert page.is_hidden("#report-flow")
    assert focused(page) == "report-open"

    page.focus("#near-me")
    page.keyboard.press("Enter")
    assert focused(page) == "near-title"
    page.focus("[data-close=near]")
    page.keyboard.press("Enter")
    assert focused(page) == "near-me"


def test_escape_still_leaves_from_the_report_sheet(page, service):
    page.route(
        "https://neutral.example/**", lambda route: route.fulfill(body="<p>weather</p>", content_type="text/html")
    )
    open_map(page, service)
    page.click("#report-open")
    page.click("[data-category=patrol]")

    page.keyboard.press("Escape")

    page.wait_for_url("https://neutral.example/**")


@pytest.mark.parametrize("state", ["map", "options", "report", "details"])
def test_text_contrast_meets_wcag_aa(page, service, state):
    open_map(page, service)
    if state == "options":
        page.click("#options summary")
    elif state in ("report", "details"):
        page.click("#report-open")
    if state == "details":
        page.click("[data-category=raid]")
        page.click("[data-place=here]")
        page.click("[data-when='0']")
    shot(page, f"14-contrast-{state}")

    assert page.evaluate(LOW_CONTRAST_JS) == []
