"""Heat after moderation equals heat rebuilt from the events: every transition counted exactly once."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from mapsvc.core.roles import Role
from tests.conftest import NOW
from tests.helpers import HOME_CELL, cell_centre, read_stale_s_later, sibling_cells
from tests.moderation_helpers import (
    ONE_EVENT_CELLS,
    Acting,
    act,
    assert_same_heat,
    heat_reads,
    heat_state,
    rebuilt_heat_state,
)

HOME = cell_centre(HOME_CELL)
ELSEWHERE = [cell_centre(c) for c in sibling_cells(HOME_CELL, 4)]


@pytest.fixture
def app_config(app_config):
    overrides = {**ONE_EVENT_CELLS, "raid": {"min_count_public": 1, "premoderation": True}}
    return {**app_config, "CATEGORY_OVERRIDES": overrides}


@pytest.fixture
def scene(client, app):
    """Return the acting role and events: checkpoints of two hours, a pending raid, a day-bucket robbery."""
    acting = Acting(app)
    ids = {
        "checkpoint now": acting.report(client, HOME),
        "checkpoint 3h": acting.report(client, ELSEWHERE[0], occurred_at=NOW - timedelta(hours=3)),
        "checkpoint 5h": acting.report(client, HOME, occurred_at=NOW - timedelta(hours=5)),
        "raid pending": acting.report(client, ELSEWHERE[1], "raid", occurred_at=NOW - timedelta(hours=2)),
        "raid pending 2": acting.report(client, HOME, "raid", occurred_at=NOW - timedelta(hours=7)),
        "robbery": acting.report(client, ELSEWHERE[2], "robbery", occurred_at=NOW - timedelta(days=2)),
    }
    acting.role = Role.MODERATOR
    return ids


def assert_heat_equals_rebuild(client) -> None:
    """Compare the stored heat and what /api/heat answers with a rebuild from the events."""
    stored, answered = heat_state(client.application), heat_reads(client)
    assert_same_heat(stored, rebuilt_heat_state(client.application))
    read_stale_s_later(client.application)
    assert heat_reads(client) == answered


ACTIONS = {
    "recategorise hour to day bucket": [("checkpoint 3h", "category", {"category": "robbery"})],
    "recategorise day to hour bucket": [("robbery", "category", {"category": "checkpoint"})],
    "recategorise a pending event": [("raid pending", "category", {"category": "checkpoint"})],
    "merge two buckets and cells": [("checkpoint now", "merge", {"other": "checkpoint 3h"})],
    "merge a published one into a pending one": [
        ("raid pending 2", "approve", {}),
        ("raid pending", "merge", {"other": "raid pending 2"}),
    ],
    "merge pending into published": [("checkpoint now", "merge", {"other": "raid pending"})],
    "approve then reject": [("raid pending", "approve", {}), ("raid pending", "reject", {})],
    "verify a pending event": [("raid pending", "verify", {})],
    "reject, recategorise refused, approve": [("robbery", "reject", {}), ("robbery", "approve", {})],
}


@pytest.mark.parametrize("steps", ACTIONS.values(), ids=ACTIONS)
def test_heat_after_moderation_equals_a_rebuild(client, scene, steps):
    for name, action, body in steps:
        body = {k: (scene[v] if k == "other" else v) for k, v in body.items()}
        response = client.post(f"/api/moderation/events/{scene[name]}/{action}", json=body)
        assert response.status_code in (200, 409), response.get_json()

    assert_heat_equals_rebuild(client)


def test_heat_after_a_merge_then_a_split_equals_a_rebuild(client, scene):
    merged = act(client, scene["checkpoint now"], "merge", other=scene["checkpoint 5h"])
    act(client, merged["id"], "merge", other=scene["checkpoint 3h"])
    reports = act(client, merged["id"], "category", category="patrol")["reports"]

    new = act(client, merged["id"], "split", 201, reports=[reports[0]["id"]])

    assert new["category"] == "patrol"
    assert_heat_equals_rebuild(client)


def test_heat_after_a_random_run_of_actions_equals_a_rebuild(client, scene):
    rng = random.Random(20261123)
    ids = list(scene.values())
    categories = ["checkpoint", "patrol", "raid", "robbery", "detention"]
    for _ in range(40):
        event = rng.choice(ids)
        action = rng.choice(["approve", "reject", "verify", "category", "merge", "split"])
        body: dict[str, object] = {}
        if action == "category":
            body = {"category": rng.choice(categories)}
        elif action == "merge":
            body = {"other": rng.choice(ids)}
        elif action == "split":
            shown = client.get(f"/api/moderation/events/{event}").get_json()
            body = {"reports": [r["id"] for r in shown.get("reports", [])[:1]]}
        response = client.post(f"/api/moderation/events/{event}/{action}", json=body)
        assert response.status_code in (200, 201, 404, 409, 422), response.get_json()
        if response.status_code == 201:
            ids.append(response.get_json()["id"])
        if action == "merge" and response.status_code == 200:
            ids.remove(body["other"])  # type: ignore[arg-type]

    assert_heat_equals_rebuild(client)
