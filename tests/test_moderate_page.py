"""The moderator's page: plain forms with CSRF tokens, signed in for real, working without JavaScript."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from mapsvc.core.roles import Role
from tests.conftest import NOW
from tests.helpers import HOME_CELL, cell_centre, event_by_public_id, layer_ids, post_device, sibling_cells, sign_in

HOME = cell_centre(HOME_CELL)
ELSEWHERE = cell_centre(sibling_cells(HOME_CELL, 1)[0])


@pytest.fixture
def app_config(app_config):
    return {**app_config, "CATEGORY_OVERRIDES": {"raid": {"premoderation": True}}}


def anonymous_reports(app, *places):
    """Post reports from another, anonymous client; return their event ids."""
    other = app.test_client()
    return [post_device(other, place, category).event_id for place, category in places]


def test_queue_page_lists_the_pending_event_with_its_forms(app, client):
    (raid,) = anonymous_reports(app, (HOME, "raid"))
    token = sign_in(client, app, Role.MODERATOR)

    page = client.get("/moderate/").get_data(as_text=True)

    assert f'id="event-{raid}"' in page
    assert f'name="csrf_token" value="{token}"' in page
    assert 'value="approve"' in page and 'value="reject"' in page


def test_approve_by_form_publishes_and_returns_to_the_queue(app, client):
    (raid,) = anonymous_reports(app, (HOME, "raid"))
    token = sign_in(client, app, Role.MODERATOR)

    response = client.post(f"/moderate/events/{raid}", data={"action": "approve", "csrf_token": token})

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/moderate/?done=approve")
    assert layer_ids(client) == [raid]


def test_a_form_without_its_csrf_token_is_refused(app, client):
    (raid,) = anonymous_reports(app, (HOME, "raid"))
    sign_in(client, app, Role.MODERATOR)

    response = client.post(f"/moderate/events/{raid}", data={"action": "approve"})

    assert response.status_code == 403
    assert event_by_public_id(app, raid).status == "pending"


def test_an_impossible_action_shows_the_queue_with_the_error(app, client):
    (checkpoint,) = anonymous_reports(app, (HOME, "checkpoint"))
    token = sign_in(client, app, Role.MODERATOR)

    response = client.post(f"/moderate/events/{checkpoint}", data={"action": "approve", "csrf_token": token})

    assert response.status_code == 409
    assert 'role="alert"' in response.get_data(as_text=True)


def test_merge_and_split_by_form(app, client):
    kept, other = anonymous_reports(app, (HOME, "raid"), (ELSEWHERE, "raid"))
    token = sign_in(client, app, Role.MODERATOR)

    merged = client.post(f"/moderate/events/{kept}", data={"action": "merge", "other": other, "csrf_token": token})
    page = client.get(merged.headers["Location"]).get_data(as_text=True)
    report_ids = re.findall(r'name="reports" value="([^"]+)"', page)
    split = client.post(
        f"/moderate/events/{kept}", data={"action": "split", "reports": report_ids[1:], "csrf_token": token}
    )

    assert merged.status_code == split.status_code == 303
    assert len(report_ids) == 2
    assert event_by_public_id(app, kept).corroborations == 1


@pytest.mark.parametrize("role", [Role.PEER, Role.PLANNER, Role.ADVOCATE])
def test_other_roles_may_not_moderate(app, client, role):
    (raid,) = anonymous_reports(app, (HOME, "raid"))
    token = sign_in(client, app, role)

    assert client.get("/moderate/").status_code == 403
    assert client.post(f"/moderate/events/{raid}", data={"action": "approve", "csrf_token": token}).status_code == 403


def test_the_api_takes_the_csrf_header_from_a_signed_in_moderator(app, client):
    (raid,) = anonymous_reports(app, (HOME, "raid"))
    token = sign_in(client, app, Role.MODERATOR)

    refused = client.post(f"/api/moderation/events/{raid}/reject")
    done = client.post(f"/api/moderation/events/{raid}/reject", headers={"X-CSRF-Token": token})

    assert (refused.status_code, done.status_code) == (403, 200)


@pytest.mark.parametrize("lang", ["ru", "ky"])
def test_the_page_is_translated(app, client, lang):
    anonymous_reports(app, (HOME, "raid"))
    sign_in(client, app, Role.MODERATOR)

    page = client.get(f"/moderate/?lang={lang}").get_data(as_text=True)

    assert "Approve" not in page and "Waiting for a moderator" not in page


def reports_an_hour_apart(app, *places):
    """Post anonymous reports one hour apart (so none merge); return their event ids."""
    other = app.test_client()
    return [
        post_device(other, place, category, occurred_at=NOW - timedelta(hours=i)).event_id
        for i, (place, category) in enumerate(places)
    ]


def test_a_long_queue_comes_a_page_at_a_time_each_event_once(app, client):
    raids = reports_an_hour_apart(app, *[(HOME, "raid")] * 45)
    sign_in(client, app, Role.MODERATOR)

    pages = [client.get("/moderate/", query_string={"page": n}).get_data(as_text=True) for n in (1, 2, 3)]

    shown = [re.findall(r'id="event-([^"]+)"', page) for page in pages]
    assert [len(ids) for ids in shown] == [20, 20, 5]
    assert sorted(i for ids in shown for i in ids) == sorted(raids)
    assert "page=2" in pages[0] and "page=2" in pages[2] and "page=4" not in pages[2]


def test_merge_offers_only_nearby_events_of_the_category_nearest_first(app, client):
    near, middle, far = (HOME[0] + 0.003, HOME[1]), (HOME[0] + 0.008, HOME[1]), (HOME[0] + 0.05, HOME[1])
    raid, raid_middle, raid_near, raid_far, patrol_near = reports_an_hour_apart(
        app, (HOME, "raid"), (middle, "raid"), (near, "raid"), (far, "raid"), (near, "patrol")
    )
    sign_in(client, app, Role.MODERATOR)

    page = client.get("/moderate/").get_data(as_text=True)

    card = page.split(f'id="event-{raid}"', 1)[1].split("</article>", 1)[0]
    offered = re.findall(r'<option value="([^"]+)">', card.split('name="other"', 1)[1].split("</select>", 1)[0])
    assert offered == [raid_near, raid_middle]
    assert raid_far not in card and patrol_near not in card  # 5.5 km away; another category
