"""Helpers for the moderation tests: acting as a role, reading heat back, comparing with a rebuild."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import select

from mapsvc.core.roles import Role
from mapsvc.store.heat import rebuild_heat
from mapsvc.store.models import AuditEntry, HeatSeries, HeatStep
from mapsvc.web.auth.identity import Identity
from tests.conftest import NOW
from tests.helpers import post_device

#: Every category's heat cells shown from one event on, so that a lost or doubled event shows.
ONE_EVENT_CELLS = {
    name: {"min_count_public": 1}
    for name in ("checkpoint", "patrol", "raid", "detention", "extortion", "attack", "robbery", "other")
}


class Acting:
    """Who the test client is: set ``role`` before a request (a stand-in for signing in)."""

    def __init__(self, app: Flask) -> None:
        self.role = Role.ANONYMOUS
        hooks = app.before_request_funcs.setdefault(None, [])
        # Right after the accounts' own identity hook (if any) and before the permission check.
        after = next((i + 1 for i, f in enumerate(hooks) if f.__name__ == "load_identity"), 0)
        hooks.insert(after, self._set)

    def report(
        self, client: FlaskClient, point: tuple[float, float], category: str = "checkpoint", **fields: Any
    ) -> str:
        """Post a report as an anonymous visitor, whatever the role; return its event's id."""
        role, self.role = self.role, Role.ANONYMOUS
        try:
            return report_at(client, point, category, **fields)
        finally:
            self.role = role

    def _set(self) -> None:
        if self.role is not Role.ANONYMOUS:
            g.identity = Identity(self.role, f"test-{self.role.value}", 1)


def report_at(client: FlaskClient, point: tuple[float, float], category: str = "checkpoint", **fields: Any) -> str:
    """Post a device-fuzzed report at ``point``; return its event's id."""
    return str(post_device(client, point, category, **fields).event_id)


def act(client: FlaskClient, event_id: str, action: str, status: int = 200, **body: Any) -> dict[str, Any]:
    """POST one moderation action; check the status; return the JSON answer."""
    response = client.post(f"/api/moderation/events/{event_id}/{action}", json=body)
    assert response.status_code == status, response.get_json()
    result: dict[str, Any] = response.get_json()
    return result


def heat_state(app: Flask, at: datetime = NOW) -> dict[tuple[str, str], list[tuple[datetime, int, float]]]:
    """Return every heat series as (bucket, events so far, decayed sum at ``at``), zero steps left out.

    Steps are cumulative, so two histories are equal when their non-empty steps agree; a step
    that went to zero (an event added and removed) equals no step.
    """
    state: dict[tuple[str, str], list[tuple[datetime, int, float]]] = {}
    with app.extensions["mapsvc.store"].reader() as session:
        rows = session.execute(
            select(
                HeatSeries.cell,
                HeatSeries.category,
                HeatSeries.half_life_s,
                HeatStep.bucket_start,
                HeatStep.events_total,
                HeatStep.decayed_sum,
                HeatStep.landmark_s,
            )
            .join(HeatStep, HeatStep.series_id == HeatSeries.id)
            .order_by(HeatSeries.cell, HeatSeries.category, HeatStep.bucket_start)
        ).all()
    for cell, category, half_life, bucket, total, s, landmark in rows:
        value = s * math.exp(-math.log(2) / half_life * (at.timestamp() - landmark))
        state.setdefault((cell, category), []).append((bucket, total, value))
    return {k: _dedupe(v) for k, v in state.items() if any(total for _, total, _ in v)}


def _dedupe(steps: list[tuple[datetime, int, float]]) -> list[tuple[datetime, int, float]]:
    """Drop steps that repeat the one before (a bucket whose event moved away)."""
    kept: list[tuple[datetime, int, float]] = []
    for step in steps:
        if step[1] == 0 and not kept:
            continue
        if kept and step[1] == kept[-1][1] and math.isclose(step[2], kept[-1][2], rel_tol=1e-9):
            continue
        kept.append(step)
    return kept


def assert_same_heat(
    got: dict[tuple[str, str], list[tuple[datetime, int, float]]],
    want: dict[tuple[str, str], list[tuple[datetime, int, float]]],
) -> None:
    """Assert two heat states hold the same series, steps, counts and (to 1e-9) decayed sums."""
    assert sorted(got) == sorted(want)
    for key, steps in want.items():
        assert [(b, t) for b, t, _ in got[key]] == [(b, t) for b, t, _ in steps], key
        assert [v for *_, v in got[key]] == pytest.approx([v for *_, v in steps], rel=1e-9, abs=1e-12), key


def rebuilt_heat_state(app: Flask) -> dict[tuple[str, str], list[tuple[datetime, int, float]]]:
    """Rebuild the heat from the events (the reference) and return its state."""
    s = app.extensions["mapsvc.settings"]
    with app.extensions["mapsvc.store"].writing() as session:
        rebuild_heat(session, s.policies, s.heat_resolution)
    return heat_state(app)


def heat_reads(client: FlaskClient) -> list[Any]:
    """Return /api/heat at a few moments and resolutions, for every category: what people see."""
    answers = []
    for hours in (0, 5, 30):
        for resolution in (6, 8):
            at = (NOW - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
            response = client.get("/api/heat", query_string={"at": at, "resolution": resolution})
            assert response.status_code == 200
            answers.append(sorted((f["id"], f["properties"]["events"]) for f in response.get_json()["features"]))
    return answers


def audit_entries(app: Flask) -> list[AuditEntry]:
    """Return the audit log, oldest first."""
    with app.extensions["mapsvc.store"].reader() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
