"""Intake with trust: trusted peers, corroboration, what merges into what, burst holds, single events."""

from __future__ import annotations

import pytest

from mapsvc.core.roles import Role
from tests.helpers import (
    HOME_CELL,
    cell_centre,
    event_by_public_id,
    layer_ids,
    read_stale_s_later,
    reported_event,
    sibling_cells,
)
from tests.moderation_helpers import ONE_EVENT_CELLS, Acting, act, heat_reads, report_at

HOME = cell_centre(HOME_CELL)
ELSEWHERE = [cell_centre(c) for c in sibling_cells(HOME_CELL, 6)]


@pytest.fixture
def app_config(app_config):
    return {
        **app_config,
        "CATEGORY_OVERRIDES": {**ONE_EVENT_CELLS, "raid": {"min_count_public": 1, "premoderation": True}},
    }


@pytest.fixture
def acting(app):
    return Acting(app)


def test_a_trusted_peers_report_is_published_verified(client, acting):
    acting.role = Role.PEER
    event = report_at(client, HOME, "checkpoint")

    assert client.get("/api/layers").get_json()["features"][0]["properties"]["trust"] == "verified"
    assert event_by_public_id(client.application, event).status == "published"


def test_a_trusted_peers_report_skips_pre_moderation(client, acting):
    acting.role = Role.PEER

    event = report_at(client, HOME, "raid")

    stored = event_by_public_id(client.application, event)
    assert (stored.status, stored.trust, stored.held_reason) == ("published", "verified", None)


def test_two_anonymous_reports_of_one_place_are_corroborated(client, acting):
    first = acting.report(client, HOME)
    assert event_by_public_id(client.application, first).trust == "unverified"

    second = acting.report(client, HOME)

    assert second == first
    stored = event_by_public_id(client.application, first)
    assert (stored.corroborations, stored.trust) == (2, "corroborated")


def test_an_anonymous_report_merged_into_a_verified_event_keeps_it_verified(client, acting):
    acting.role = Role.PEER
    event = report_at(client, HOME)

    acting.report(client, HOME)

    stored = event_by_public_id(client.application, event)
    assert (stored.corroborations, stored.trust) == (2, "verified")


def test_withdrawing_the_trusted_report_leaves_the_event_corroborated(client, acting):
    acting.role = Role.PEER
    response = client.post(
        "/api/reports", json={"category": "checkpoint", "lat": HOME[0], "lon": HOME[1], "fuzzed_on_device": True}
    )
    receipt, event = response.get_json(), reported_event(client.application, response).public_id
    acting.report(client, HOME)
    acting.report(client, HOME)

    gone = client.delete(f"/api/reports/{receipt['id']}", json={"withdrawal_code": receipt["withdrawal_code"]})

    assert gone.status_code == 204
    stored = event_by_public_id(client.application, event)
    assert (stored.corroborations, stored.trust) == (2, "corroborated")


def test_a_published_report_never_merges_into_a_pending_event(client, acting):
    acting.role = Role.MODERATOR
    pending = acting.report(client, HOME, "raid")
    acting.role = Role.PEER  # a peer's report is published at once, in the same category and place

    published = report_at(client, HOME, "raid")

    assert published != pending
    assert event_by_public_id(client.application, pending).corroborations == 1
    assert layer_ids(client) == [published]


def test_pending_reports_of_one_place_merge_and_wait_together(client, acting):
    first = acting.report(client, HOME, "raid")
    second = acting.report(client, HOME, "raid")

    assert second == first
    stored = event_by_public_id(client.application, first)
    assert (stored.status, stored.corroborations, stored.trust) == ("pending", 2, "corroborated")
    assert layer_ids(client) == []


def test_withdrawing_a_pending_events_report_leaves_the_heat_alone(client, acting):
    acting.report(client, ELSEWHERE[0])
    heat = heat_reads(client)
    response = client.post(
        "/api/reports", json={"category": "raid", "lat": HOME[0], "lon": HOME[1], "fuzzed_on_device": True}
    )
    receipt = response.get_json()
    read_stale_s_later(client.application)
    assert heat_reads(client) == heat

    client.delete(f"/api/reports/{receipt['id']}", json={"withdrawal_code": receipt["withdrawal_code"]})

    assert heat_reads(client) == heat


def test_trusted_peers_see_single_attacks_privately(client, acting):
    acting.role = Role.PEER
    attack = report_at(client, HOME, "attack")

    response = client.get("/api/layers")

    body = response.get_json()
    assert [f["id"] for f in body["features"]] == [attack]
    assert "attack" not in body["heatOnly"]
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "ETag" not in response.headers
    assert {"Cookie", "Authorization"} <= set(response.vary)


@pytest.mark.parametrize("role", [Role.ANONYMOUS, Role.ADVOCATE])
def test_without_the_capability_attacks_stay_heat_only(client, acting, role):
    acting.role = Role.PEER
    report_at(client, HOME, "attack")
    peer = client.get("/api/layers")
    acting.role = role

    response = client.get("/api/layers")

    body = response.get_json()
    assert body["features"] == []
    assert "attack" in body["heatOnly"]
    assert "private" not in response.headers["Cache-Control"]
    assert response.headers["ETag"] != peer.headers.get("ETag")
    # An anonymous revalidation with any tag the peer could have seen gets the full public body.
    again = client.get("/api/layers", headers={"If-None-Match": peer.headers.get("ETag", '"x"')})
    assert again.status_code == 200


def test_a_rejected_event_answers_no_merges_and_no_corroboration(client, acting):
    event = acting.report(client, HOME)
    acting.role = Role.MODERATOR
    act(client, event, "reject")

    again = acting.report(client, HOME)

    assert again != event
    assert event_by_public_id(client.application, event).corroborations == 1
