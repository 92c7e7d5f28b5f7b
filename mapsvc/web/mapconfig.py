"""What the map page's JavaScript needs, rendered by the server into the page as JSON.

The page's scripts hard-code no user-facing text: every string comes translated from here, so
the same gettext catalogs serve the templates and the JavaScript. Category symbols are drawn
here too, once, so the legend, the report buttons and the markers always agree.
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_babel import get_locale, pgettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from mapsvc.core.moments import iso
from mapsvc.core.policy import PERPETRATORS
from mapsvc.services.names import CATEGORY_NAMES, PERPETRATOR_NAMES
from mapsvc.settings import Settings

#: Each category's shape (SVG in a 28 x 28 box) and colour: the shape and the letter tell the
#: categories apart without colour; white letters on these colours pass WCAG AA contrast.
SHAPES = {
    "checkpoint": ('<rect x="3" y="3" width="22" height="22" rx="2"/>', "#1f4e9c"),
    "patrol": ('<circle cx="14" cy="14" r="12"/>', "#21618c"),
    "raid": ('<path d="M14 1.5 27 26H1z"/>', "#b2182b"),
    "detention": ('<path d="M14 0 28 14 14 28 0 14z"/>', "#6a2c85"),
    "extortion": ('<path d="M7.5 2.5h13L27 14l-6.5 11.5h-13L1 14z"/>', "#8a4a00"),
    "attack": ('<path d="M14 0l3.6 8.3 8.9.4-7 5.7 2.4 8.7L14 18.2l-7.9 4.9 2.4-8.7-7-5.7 8.9-.4z"/>', "#542788"),
    "robbery": ('<path d="M14 1 27 10.5 22 26H6L1 10.5z"/>', "#6b4a10"),
    "other": ('<path d="M9 1h10l8 8v10l-8 8H9l-8-8V9z"/>', "#4d4d4d"),
}


def category_letter(name: str) -> str:
    """Return the one letter drawn inside a category's symbol, in the user's language."""
    # flask_babel has no type hints: the annotation says what its pgettext returns.
    letters: dict[str, str] = {
        "checkpoint": pgettext("symbol letter for checkpoint", "C"),
        "patrol": pgettext("symbol letter for patrol", "P"),
        "raid": pgettext("symbol letter for raid", "R"),
        "detention": pgettext("symbol letter for detention", "D"),
        "extortion": pgettext("symbol letter for extortion", "E"),
        "attack": pgettext("symbol letter for attack", "A"),
        "robbery": pgettext("symbol letter for robbery", "B"),
        "other": pgettext("symbol letter for other", "O"),
    }
    return letters.get(name, name[:1].upper())


def symbol(name: str) -> Markup:
    """Return the inline SVG symbol of a category (decorative: the name is always beside it)."""
    shape, colour = SHAPES.get(name, SHAPES["other"])
    y = "19" if name == "raid" else "18.5"
    return Markup(
        '<svg viewBox="0 0 28 28" width="28" height="28" aria-hidden="true" focusable="false">'
        f'<g fill="{colour}" stroke="#fff" stroke-width="1.5">{shape}</g>'
        f'<text x="14" y="{y}" text-anchor="middle" font-size="12" font-weight="700" fill="#fff" '
        f'font-family="sans-serif">{escape(category_letter(name))}</text></svg>'
    )


#: Texts the scripts show; placeholders in braces are filled in by the script.
JS_STRINGS = {
    "updated": _l("Updated {time}"),
    "shown": _l("{n} events shown"),
    "shown_some": _l("{n} of {total} events shown, the freshest first. Zoom in to see more."),
    "loading": _l("Loading…"),
    "offline": _l("No connection. The map shows what was last loaded."),
    "heat_only": _l("Attacks are shown only as heat, never as single points."),
    "here_wait": _l("Finding where you are…"),
    "here_failed": _l("Your location is not available. Tap the map instead."),
    "tap_map": _l("Tap the map where it happened."),
    "outside": _l("That place is outside the area this map covers."),
    "preview": _l(
        "Your report will appear at the marked point, not where you are. "
        "Others will only know it happened somewhere in the circle."
    ),
    "sending": _l("Sending…"),
    "sent": _l("Sent. Thank you: your report was received."),
    "sent_moderated": _l("Sent. Thank you: a moderator checks reports of this kind before they appear on the map."),
    "queued": _l("No connection now. Your report is saved on this phone and will be sent when you are online."),
    "queued_sent": _l("Your saved report was sent."),
    "queued_busy": _l(
        "The service cannot take reports just now. Your report is saved on this phone and will be sent by itself."
    ),
    "outbox_waiting": _l("Reports saved on this phone, waiting to be sent: {n}."),
    "outbox_refused": _l("A report ({category}) was not accepted and will not be sent again: {error}"),
    "failed": _l("The report was not accepted: {error}"),
    "code": _l("Withdrawal code: {code}"),
    "withdraw": _l("Withdraw"),
    "withdrawn": _l("Your report was withdrawn."),
    "withdraw_failed": _l("Could not withdraw the report now. Try again later."),
    "my_report": _l("{category}, {time}"),
    "near_wait": _l("Finding where you are… (your location stays on this phone)"),
    "near_none": _l("Nothing reported within {km} km of you now."),
    "near_item": _l("{category}: {distance} away, {time}"),
    "metres": _l("{n} m"),
    "kilometres": _l("{n} km"),
    "hours_ago": _l("{n} h ago"),
    "days_ago": _l("{n} days ago"),
    "today": _l("today"),
    "yesterday": _l("yesterday"),
    "just_now": _l("within the hour"),
    "event_label": _l("{category}, reported {time}, seen by {n}"),
    "trust_unverified": _l("Not verified yet"),
    "trust_corroborated": _l("Reported by several people"),
    "trust_verified": _l("Verified by a trusted person"),
    "zoom_in": _l("Zoom in"),
    "zoom_out": _l("Zoom out"),
    "close": _l("Close"),
}


def page_config(s: Settings) -> dict[str, Any]:
    """Return the JSON the map page's scripts start from (policies, URLs, texts)."""
    body = categories_body(s)
    for category in body["categories"]:
        category["label"] = str(CATEGORY_NAMES.get(category["name"], category["name"]))
        category["symbol"] = str(symbol(category["name"]))
    return {
        "lang": str(get_locale()),
        "now": iso(s.now()),
        "refresh_s": s.pages.refresh_s,
        "limit": s.pages.event_limit,
        "retry_ms": {"base": s.pages.retry_base_ms, "max": s.pages.retry_max_ms},
        "exit_url": s.pages.quick_exit_url,
        "urls": {
            "layers": url_for("api.layers"),
            "heat": url_for("api.heat"),
            "reports": url_for("api.create_report"),
        },
        "policy": body,
        "perpetrators": {k: str(v) for k, v in PERPETRATOR_NAMES.items()},
        "strings": {k: str(v) for k, v in JS_STRINGS.items()},
    }


def categories_body(s: Settings) -> dict[str, Any]:
    """Return what ``/api/categories`` answers; the map page embeds the same document."""
    return {
        "privacy_level": s.level,
        "visibility_threshold": s.threshold,
        "categories": [p.as_public_dict(s.level) for p in s.policies.values()],
        "perpetrators": list(PERPETRATORS),
        "service_area": {"bbox": list(s.area.bounds)},
    }
