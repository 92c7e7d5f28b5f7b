"""A moderator on a phone: signs in, approves one event and rejects another; the map follows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from mapsvc.core.roles import Role
from mapsvc.store.models import Event
from tests.browser.conftest import Service, served_app, shot
from tests.helpers import HOME_CELL, PASSWORD, cell_centre, make_account, post_device, sibling_cells

HOME = cell_centre(HOME_CELL)
NEAR = cell_centre(sibling_cells(HOME_CELL, 3)[2])


def event_at(app: Flask, point: tuple[float, float], category: str) -> str:
    """Return the public id of the event at a device-fuzzed point (a report's answer names only the report)."""
    with app.extensions["mapsvc.store"].reader() as session:
        found = select(Event.public_id).where(Event.category == category, Event.lat == point[0], Event.lon == point[1])
        return str(session.scalars(found).one())


@pytest.fixture
def moderated(tmp_path) -> Iterator[tuple[Service, dict[str, str]]]:
    """Serve a store with two published checkpoints and one raid waiting (raids are pre-moderated)."""
    app = served_app(tmp_path, 11, CATEGORY_OVERRIDES={"raid": {"premoderation": True}})
    client = app.test_client()
    for point, category in ((HOME, "checkpoint"), (NEAR, "checkpoint"), (HOME, "raid")):
        post_device(client, point, category)
    events = {
        "kept": event_at(app, HOME, "checkpoint"),
        "false": event_at(app, NEAR, "checkpoint"),
        "raid": event_at(app, HOME, "raid"),
    }
    make_account(app, Role.MODERATOR, "mod-phone")
    with Service(app) as running:
        yield running, events


def markers(page: Any) -> list[str]:
    """Return the titles of the event markers the map draws, once it has loaded."""
    page.wait_for_selector("#mapsvc[data-loaded]")
    return sorted(page.eval_on_selector_all(".leaflet-marker-icon.sym", "els => els.map(e => e.title)"))


def test_moderator_approves_and_rejects_on_a_phone_and_the_map_follows(page, moderated):
    service, events = moderated
    page.goto(service.url + "/?lang=en")
    before = markers(page)
    assert len(before) == 2 and all(t.startswith("Checkpoint") for t in before)

    page.goto(service.url + "/moderate/")
    assert "/login" in page.url  # sent to sign in first
    page.fill("input[name=username]", "mod-phone")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/moderate/**")
    raid_card = page.locator(f"#event-{events['raid']}")
    approve = raid_card.locator("button[value=approve]")
    box = approve.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 0.8 * 340  # a thumb-sized, phone-wide button
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # nothing wider than the phone
    shot(page, "20-moderation-queue")
    approve.click()
    page.wait_for_url("**done=approve")
    page.locator(f"#event-{events['false']} button[value=reject]").click()
    page.wait_for_url("**done=reject")
    assert page.locator(f"#event-{events['false']}").count() == 0
    shot(page, "21-moderation-done")

    page.goto(service.url + "/?lang=en")
    after = markers(page)

    assert len(after) == 2
    assert sum(t.startswith("Raid") for t in after) == 1
    assert sum(t.startswith("Checkpoint") for t in after) == 1
    assert all(t.endswith("Not verified yet") for t in after)
