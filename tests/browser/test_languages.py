"""The map and the 30-second report in Russian, Kyrgyz and English, chosen from the phone's language."""

from __future__ import annotations

import pytest
from babel.support import Translations

from mapsvc.i18n import TRANSLATIONS
from mapsvc.services.names import CATEGORY_NAMES
from tests.browser.conftest import shot

#: The phone's language (Playwright sends it as Accept-Language) and the page language it should get.
PHONES = [("ru-RU", "ru"), ("ky-KG", "ky"), ("en-GB", "en")]


@pytest.fixture(params=PHONES, ids=[lang for _, lang in PHONES])
def phone(request, browser, browser_context_args):
    """A page in a browser context whose language is one of the three."""
    locale, lang = request.param
    context = browser.new_context(**{**browser_context_args, "locale": locale})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page, lang, errors
    context.close()


def translate(lang: str, message: str) -> str:
    """Return a message as the compiled catalog has it (English has no catalog: the message itself)."""
    return Translations.load(str(TRANSLATIONS), [lang]).gettext(message)


def test_the_map_and_a_report_in_the_phones_language(phone, service):
    page, lang, errors = phone
    page.goto(service.url + "/")
    page.wait_for_selector("#mapsvc[data-loaded]", state="attached")
    shot(page, f"10-map-{lang}")

    assert page.get_attribute("html", "lang") == lang
    assert page.inner_text("#report-open").strip() == translate(lang, "Report")

    page.click("#report-open")
    for category, name in CATEGORY_NAMES.items():
        button = page.get_by_role("button", name=translate(lang, name._args[0]), exact=True)
        assert button.get_attribute("data-category") == category
    shot(page, f"11-report-category-{lang}")

    page.click("[data-category=raid]")
    page.click("[data-place=here]")
    page.click("[data-when='0']")
    page.click("[data-next=preview]")
    shot(page, f"12-report-preview-{lang}")
    page.click("[data-send]")
    page.wait_for_selector(".code:not(:empty)")
    shot(page, f"13-report-done-{lang}")

    done = page.inner_text("[data-message=done]")
    assert done == translate(lang, "Sent. Thank you: your report was received.")
    assert errors == []
