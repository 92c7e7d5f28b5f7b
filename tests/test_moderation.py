"""Moderation through the API: the queue, each action, impossible transitions, the audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mapsvc.core.roles import Role
from tests.conftest import NOW
from tests.helpers import HOME_CELL, cell_centre, event_by_public_id, layer_ids, sibling_cells
from tests.moderation_helpers import ONE_EVENT_CELLS, Acting, act, audit_entries, heat_reads

HOME = cell_centre(HOME_CELL)
ELSEWHERE = [cell_centre(c) for c in sibling_cells(HOME_CELL, 4)]


@pytest.fixture
def app_config(app_config):
    return {
        **app_config,
        "CATEGORY_OVERRIDES": {**ONE_EVENT_CELLS, "raid": {"min_count_public": 1, "premoderation": True}},
    }


@pytest.fixture
def acting(app):
    return Acting(app)


@pytest.fixture
def moderator(acting):
    acting.role = Role.MODERATOR
    return acting


def heat_events(client, category=None) -> int:
    """Return how many events the heat counts (all cells in view, at the atom resolution)."""
    params = {"resolution": 8, **({"category": category} if category else {})}
    response = client.get("/api/heat", query_string=params)
    return sum(f["properties"]["events"] for f in response.get_json()["features"])


def test_queue_lists_pending_oldest_first_then_recent_unverified(client, moderator):
    published = moderator.report(client, HOME)
    first = moderator.report(client, ELSEWHERE[0], "raid")
    second = moderator.report(client, ELSEWHERE[1], "raid")

    events = client.get("/api/moderation/queue").get_json()["events"]

    assert [e["id"] for e in events] == [first, second, published]
    assert [e["status"] for e in events] == ["pending", "pending", "published"]
    assert events[0]["held_reason"] == "premoderation"
    assert len(events[0]["reports"]) == 1


@pytest.mark.parametrize("role", [Role.ANONYMOUS, Role.PEER, Role.PLANNER, Role.ADVOCATE])
def test_only_moderators_reach_the_queue(client, acting, role):
    event = acting.report(client, HOME, "raid")
    acting.role = role

    assert client.get("/api/moderation/queue").status_code in (401, 403)
    assert client.post(f"/api/moderation/events/{event}/approve").status_code in (401, 403)
    assert event_by_public_id(client.application, event).status == "pending"


def test_pre_moderated_category_waits_and_appears_when_approved(client, moderator):
    raid = moderator.report(client, HOME, "raid")
    assert raid not in layer_ids(client)
    assert heat_events(client, "raid") == 0

    answer = act(client, raid, "approve")

    assert (answer["status"], answer["trust"], answer["held_reason"]) == ("published", "unverified", None)
    assert raid in layer_ids(client)
    assert heat_events(client, "raid") == 1


def test_other_categories_appear_at_once_unverified(client, acting):
    event = acting.report(client, HOME, "checkpoint")

    feature = client.get("/api/layers").get_json()["features"][0]
    assert (feature["id"], feature["properties"]["trust"]) == (event, "unverified")


def test_categories_say_which_wait_for_a_moderator(client):
    categories = {c["name"]: c for c in client.get("/api/categories").get_json()["categories"]}

    assert categories["raid"]["premoderation"] is True
    assert categories["checkpoint"]["premoderation"] is False


def test_rejected_event_leaves_layers_and_heat_at_once(client, moderator):
    kept = moderator.report(client, HOME)
    rejected = moderator.report(client, ELSEWHERE[0])
    assert set(layer_ids(client)) == {kept, rejected}
    assert heat_events(client) == 2

    act(client, rejected, "reject")

    assert layer_ids(client) == [kept]
    assert heat_events(client) == 1


def test_a_new_report_never_merges_into_a_rejected_event(client, moderator):
    rejected = moderator.report(client, HOME)
    act(client, rejected, "reject")

    again = moderator.report(client, HOME)

    assert again != rejected
    assert layer_ids(client) == [again]
    assert heat_events(client) == 1


def test_approving_a_rejected_event_restores_it_once(client, moderator):
    event = moderator.report(client, HOME)
    act(client, event, "reject")

    act(client, event, "approve")

    assert layer_ids(client) == [event]
    assert heat_events(client) == 1


def test_verify_publishes_a_pending_event_as_verified(client, moderator):
    raid = moderator.report(client, HOME, "raid")

    answer = act(client, raid, "verify")

    assert (answer["status"], answer["trust"]) == ("published", "verified")
    feature = client.get("/api/layers").get_json()["features"][0]
    assert feature["properties"]["trust"] == "verified"
    assert heat_events(client, "raid") == 1


IMPOSSIBLE = {
    "approve a published event": ("checkpoint", [], "approve", {}, 409),
    "reject a rejected event": ("checkpoint", ["reject"], "reject", {}, 409),
    "verify a rejected event": ("checkpoint", ["reject"], "verify", {}, 409),
    "verify twice": ("checkpoint", ["verify"], "verify", {}, 409),
    "recategorise a rejected event": ("checkpoint", ["reject"], "category", {"category": "raid"}, 409),
    "recategorise to its own category": ("checkpoint", [], "category", {"category": "checkpoint"}, 409),
    "recategorise to an unknown category": ("checkpoint", [], "category", {"category": "picnic"}, 422),
    "recategorise without a category": ("checkpoint", [], "category", {}, 422),
    "merge without the other event": ("checkpoint", [], "merge", {}, 422),
    "merge into an unknown event": ("checkpoint", [], "merge", {"other": "no-such-event"}, 404),
    "split its only report": ("checkpoint", [], "split", {"reports": "ALL"}, 409),
    "split a report of another event": ("checkpoint", [], "split", {"reports": ["no-such-report"]}, 422),
    "split nothing": ("checkpoint", [], "split", {"reports": []}, 422),
    "split with a bad list": ("checkpoint", [], "split", {"reports": "abc"}, 422),
}


@pytest.mark.parametrize(("category", "before", "action", "body", "status"), IMPOSSIBLE.values(), ids=IMPOSSIBLE)
def test_impossible_transitions_are_refused_and_change_nothing(
    client, moderator, category, before, action, body, status
):
    event = moderator.report(client, HOME, category)
    for step in before:
        act(client, event, step)
    if body.get("reports") == "ALL":
        body = {"reports": [r["id"] for r in client.get("/api/moderation/queue").get_json()["events"][0]["reports"]]}
    stored = event_by_public_id(client.application, event)
    entries = len(audit_entries(client.application))
    heat = heat_reads(client)

    answer = act(client, event, action, status, **body)

    assert answer["error"]
    after = event_by_public_id(client.application, event)
    assert (after.status, after.trust, after.category, after.corroborations) == (
        stored.status,
        stored.trust,
        stored.category,
        stored.corroborations,
    )
    assert len(audit_entries(client.application)) == entries
    assert heat_reads(client) == heat


def test_unknown_event_is_404(client, moderator):
    assert act(client, "no-such-event", "approve", 404)["error"]


def test_merge_of_an_event_into_itself_names_the_field(client, moderator):
    event = moderator.report(client, HOME)

    assert act(client, event, "merge", 422, other=event)["field"] == "other"


def test_merge_of_different_categories_is_refused(client, moderator):
    checkpoint = moderator.report(client, HOME)
    patrol = moderator.report(client, HOME, "patrol")

    assert act(client, checkpoint, "merge", 409, other=patrol)["error"]


def test_merge_counts_one_event_and_keeps_the_first_point(client, moderator):
    kept = moderator.report(client, HOME)
    other = moderator.report(client, ELSEWHERE[0])

    answer = act(client, kept, "merge", other=other)

    assert (answer["corroborations"], answer["trust"], len(answer["reports"])) == (2, "corroborated", 2)
    assert [answer["lat"], answer["lon"]] == list(HOME)
    assert layer_ids(client) == [kept]
    assert heat_events(client) == 1


def test_split_moves_chosen_reports_to_a_new_event_at_the_same_point(client, moderator):
    event = moderator.report(client, HOME)
    moderator.report(client, HOME)
    moderator.report(client, HOME)
    reports = client.get("/api/moderation/queue").get_json()["events"]
    assert reports == []  # corroborated events are not in the queue
    stored = event_by_public_id(client.application, event)
    assert (stored.corroborations, stored.trust) == (3, "corroborated")
    with client.application.extensions["mapsvc.store"].reader() as session:
        from sqlalchemy import select

        from mapsvc.store.models import Report

        ids = list(session.scalars(select(Report.public_id).where(Report.event_id == stored.id).order_by(Report.id)))

    new = act(client, event, "split", 201, reports=ids[1:2])

    assert (new["corroborations"], new["trust"], [r["id"] for r in new["reports"]]) == (1, "unverified", ids[1:2])
    assert [new["lat"], new["lon"]] == [stored.lat, stored.lon]
    left = event_by_public_id(client.application, event)
    assert (left.corroborations, left.trust) == (2, "corroborated")
    assert sorted(layer_ids(client)) == sorted([event, new["id"]])
    assert heat_events(client) == 2


def test_change_category_moves_the_heat_and_recuts_the_bucket(client, moderator):
    event = moderator.report(client, HOME, occurred_at=NOW - timedelta(hours=3))

    answer = act(client, event, "category", category="detention")

    assert answer["bucket_start"] == (NOW - timedelta(hours=3)).strftime("%Y-%m-%dT00:00:00Z")
    assert heat_events(client, "checkpoint") == 0
    assert heat_events(client, "detention") == 1


def test_every_action_is_audited_with_the_moderator_and_nothing_of_reporters(client, moderator):
    a, b, c = (moderator.report(client, p) for p in (HOME, ELSEWHERE[0], ELSEWHERE[1]))
    report_ids = [r["id"] for r in act(client, a, "merge", other=b)["reports"]]
    act(client, a, "split", 201, reports=report_ids[1:])
    act(client, a, "verify")
    act(client, a, "category", category="patrol")
    act(client, c, "reject")
    act(client, c, "approve")

    entries = audit_entries(client.application)

    assert [e.action for e in entries] == ["merge", "split", "verify", "change_category", "reject", "approve"]
    assert {e.actor for e in entries} == {"test-moderator"}
    assert [e.event_public_id for e in entries] == [a, a, a, a, c, c]
    assert all(e.at_hour == NOW.replace(minute=0) for e in entries)
    for entry in entries:
        assert not any(r in (entry.detail or "") for r in report_ids)


def test_moderation_answers_are_documented(client, moderator):
    from tests.test_openapi import _assert_documented

    document = client.get("/api/openapi.json").get_json()
    event = moderator.report(client, HOME, "raid")
    moderator.report(client, HOME, "raid")
    base = "/api/moderation/events/{event_id}"
    reports = client.get(f"/api/moderation/events/{event}").get_json()["reports"]
    answers = [
        ("/api/moderation/queue", "get", client.get("/api/moderation/queue")),
        (base, "get", client.get(f"/api/moderation/events/{event}")),
        (base, "get", client.get("/api/moderation/events/nothing")),
        (
            base + "/split",
            "post",
            client.post(f"{base.format(event_id=event)}/split", json={"reports": [reports[0]["id"]]}),
        ),
        (base + "/approve", "post", client.post(f"{base.format(event_id=event)}/approve")),
        (base + "/approve", "post", client.post(f"{base.format(event_id=event)}/approve")),
        (base + "/category", "post", client.post(f"{base.format(event_id=event)}/category", json={"category": "x"})),
        (base + "/merge", "post", client.post(f"{base.format(event_id=event)}/merge", json=[1])),
    ]
    assert [r.status_code for *_, r in answers] == [200, 200, 404, 201, 200, 409, 422, 400]
    for path, method, response in answers:
        assert str(response.status_code) in document["paths"][path][method]["responses"]
        _assert_documented(document, path, method, response)
