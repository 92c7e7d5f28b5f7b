"""Russian and Kyrgyz: every string translated, the committed .mo files current, pages and API errors translated."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from mapsvc.i18n import COOKIE, TRANSLATIONS
from mapsvc.services.names import CATEGORY_NAMES
from mapsvc.web.mapconfig import JS_STRINGS

TRANSLATED = ["ru", "ky"]
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def po(lang: str) -> Catalog:
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=lang)


def mo(lang: str) -> Catalog:
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo").open("rb") as f:
        return read_mo(f)


def template() -> Catalog:
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        return read_po(f)


def messages(catalog: Catalog) -> dict[tuple[str | None, str], str]:
    return {(m.context, str(m.id)): str(m.string) for m in catalog if m.id}


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_of_the_template_is_in_the_catalog(lang):
    assert set(messages(template())) <= set(messages(po(lang)))


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_has_a_translation_with_the_same_placeholders(lang):
    catalog = po(lang)
    for message in catalog:
        if not message.id:
            continue
        assert message.string.strip(), message.id
        assert not message.fuzzy, message.id
        assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(message.id)), message.id
    assert not catalog.fuzzy


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_committed_mo_file_matches_the_po_file(lang):
    compiled = io.BytesIO()
    write_mo(compiled, po(lang))
    compiled.seek(0)

    assert messages(read_mo(compiled)) == messages(mo(lang))


def test_the_template_holds_every_string_the_scripts_show():
    ids = {message_id for _context, message_id in messages(template())}

    assert {str(s._args[0]) for s in JS_STRINGS.values()} <= ids
    assert {str(s._args[0]) for s in CATEGORY_NAMES.values()} <= ids


def test_the_scripts_hard_code_no_english():
    """User-visible text in the scripts comes from S(...); a quoted sentence would be English left behind."""
    scripts = Path(__file__).resolve().parents[1] / "static" / "js"
    for script in scripts.glob("*.js"):
        code = re.sub(r"/\*.*?\*/|//[^\n]*", "", script.read_text(), flags=re.DOTALL)
        sentences = re.findall(r"\"([A-Z][a-z]+(?: [a-z]+)+[.…!?]?)\"", code)
        assert sentences == [], script.name


@pytest.mark.parametrize(
    ("lang", "expected"), [("ru", ["Сообщить", "Карта опасностей"]), ("ky", ["Билдирүү", "Коркунуч картасы"])]
)
@pytest.mark.parametrize("path", ["/", "/report"])
def test_pages_come_in_the_browsers_language(client, path, lang, expected):
    response = client.get(path, headers={"Accept-Language": f"{lang},en;q=0.5"})
    html = response.get_data(as_text=True)

    assert f'<html lang="{lang}">' in html
    assert expected[0] in html
    assert "Report" not in re.sub(r"<[^>]+>", "", html).replace("mapsvc", "")


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_map_scripts_get_their_texts_translated(client, lang):
    html = client.get("/", headers={"Accept-Language": lang}).get_data(as_text=True)
    config = json.loads(re.search(r'id="mapsvc-config">(.*?)</script>', html, re.DOTALL).group(1))
    translated = messages(mo(lang))

    assert config["lang"] == lang
    for key, text in JS_STRINGS.items():
        assert config["strings"][key] == translated[(None, str(text._args[0]))], key


@pytest.mark.parametrize(("lang", "expected"), [("ru", "lat должно быть от -90 до 90"), ("ky", "lat -90 менен 90")])
def test_api_errors_meant_for_people_are_translated(client, lang, expected):
    body = {"category": "checkpoint", "lat": 123, "lon": 74.6}
    response = client.post("/api/reports", json=body, headers={"Accept-Language": lang})

    assert response.status_code == 422
    assert response.get_json()["field"] == "lat"
    assert response.get_json()["error"].startswith(expected)


def test_lang_switches_the_language_and_is_remembered_with_the_code_only(client):
    switched = client.get("/?lang=ky", headers={"Accept-Language": "ru"})
    cookie = client.get_cookie(COOKIE)
    later = client.get("/report", headers={"Accept-Language": "ru"})

    assert '<html lang="ky">' in switched.get_data(as_text=True)
    assert cookie is not None and cookie.value == "ky"
    assert cookie.http_only and cookie.same_site == "Strict"
    assert '<html lang="ky">' in later.get_data(as_text=True)
    assert "Set-Cookie" not in later.headers


def test_an_unknown_lang_is_ignored_and_sets_no_cookie(client):
    response = client.get("/?lang=xx", headers={"Accept-Language": "ru"})

    assert '<html lang="ru">' in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
