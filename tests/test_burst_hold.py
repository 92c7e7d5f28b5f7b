"""Burst holds: past the limit, one source's further reports wait for a moderator, and it is not told."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mapsvc.core.roles import Role
from mapsvc.store.models import Event
from mapsvc.web.hooks import windows
from tests.helpers import HOME_CELL, cell_centre, layer_ids, sibling_cells
from tests.moderation_helpers import ONE_EVENT_CELLS, Acting, act

PLACES = [cell_centre(c) for c in [HOME_CELL, *sibling_cells(HOME_CELL, 6)]]


@pytest.fixture
def app_config(app_config):
    return {
        **app_config,
        "RATELIMIT_ENABLED": True,
        "INTAKE_RATE_LIMIT": "1000 per minute",
        "BURST_HOLD": "3 per hour",
        "CATEGORY_OVERRIDES": ONE_EVENT_CELLS,
    }


@pytest.fixture
def acting(app):
    return Acting(app)


def post(client, place, environ=None):
    body = {"category": "checkpoint", "lat": place[0], "lon": place[1], "fuzzed_on_device": True}
    return client.post("/api/reports", json=body, environ_base=environ or {})


def statuses(app) -> list[tuple[str, str | None]]:
    with app.extensions["mapsvc.store"].reader() as session:
        return [(s, h) for s, h in session.execute(select(Event.status, Event.held_reason).order_by(Event.id))]


def test_reports_past_the_limit_are_held_for_burst(client):
    for place in PLACES[:5]:
        assert post(client, place).status_code == 201

    assert statuses(client.application) == [("published", None)] * 3 + [("pending", "burst")] * 2
    assert len(layer_ids(client)) == 3


def test_the_answer_does_not_tell_a_held_reporter(client):
    published = [post(client, place) for place in PLACES[:3]]
    held = [post(client, place) for place in PLACES[3:5]]

    def shape(response):
        body = response.get_json()
        return (
            response.status_code,
            tuple(sorted(body)),
            response.headers["Cache-Control"],
        )

    assert {shape(r) for r in held} == {shape(r) for r in published}


def test_another_source_is_not_held(client):
    for place in PLACES[:4]:
        post(client, place)

    post(client, PLACES[5], environ={"REMOTE_ADDR": "192.0.2.7"})

    assert statuses(client.application)[-1] == ("published", None)


def test_trusted_reporters_are_never_held(client, acting):
    acting.role = Role.PEER
    for place in PLACES[:5]:
        post(client, place)

    assert statuses(client.application) == [("published", None)] * 5


def test_held_reports_never_corroborate_a_published_event(client):
    for place in PLACES[:3]:
        post(client, place)

    post(client, PLACES[0])

    assert statuses(client.application)[-1] == ("pending", "burst")
    assert [f["properties"]["corroborations"] for f in client.get("/api/layers").get_json()["features"]] == [1] * 3


def test_reports_publish_again_in_the_next_window(client, monkeypatch):
    for place in PLACES[:4]:
        post(client, place)
    monkeypatch.setattr(windows.time, "now", windows.time.now + 3600)

    post(client, PLACES[5])

    assert statuses(client.application)[-1] == ("published", None)


def test_a_moderator_approves_a_held_report(client, acting):
    for place in PLACES[:4]:
        post(client, place)
    held = client.get("/api/layers").get_json()["features"]
    assert len(held) == 3
    acting.role = Role.MODERATOR
    queue = client.get("/api/moderation/queue").get_json()["events"]
    assert queue[0]["held_reason"] == "burst"

    act(client, queue[0]["id"], "approve")

    assert len(layer_ids(client)) == 4
