"""Languages: Russian, Kyrgyz and English, chosen from the browser and switchable.

The choice is remembered in a cookie holding only the language code ("ru", "ky" or "en"):
it is the same for everyone who picks that language, so it identifies no one.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, has_request_context, request
from flask_babel import Babel, get_locale

from mapsvc.settings import LANGUAGES, settings

DEFAULT_LANGUAGE = "en"
COOKIE = "lang"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def select_language() -> str:
    """Return the language asked for by ``?lang=``, then the cookie, then Accept-Language.

    Outside a request (the command line) it is the configured default (``DEFAULT_LANGUAGE``).
    """
    fallback = settings().pages.default_language
    if not has_request_context():
        return str(fallback)
    for asked in (request.args.get("lang"), request.cookies.get(COOKIE)):
        if asked in LANGUAGES:
            return str(asked)
    return request.accept_languages.best_match(LANGUAGES) or fallback


def remember_language(response):  # type: ignore[no-untyped-def]
    """Keep a language picked with ``?lang=`` for later visits."""
    asked = request.args.get("lang")
    if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
        response.set_cookie(
            COOKIE, asked, max_age=365 * 86400, samesite="Strict", httponly=True, secure=request.is_secure
        )
    return response


def init_app(app: Flask) -> None:
    """Set up Flask-Babel with the project's translations."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    Babel(app, locale_selector=select_language)
    app.after_request(remember_language)
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["get_locale"] = get_locale
