"""What a seized database or log file holds after real use (privacy.md §4 and §5)."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from scipy import stats
from sqlalchemy import select

from mapsvc.core.fuzz import radial_cdf
from mapsvc.core.geodesy import geodesic_distance_m
from mapsvc.core.policy import DEFAULT_POLICIES
from mapsvc.store.models import Event, Report
from tests.conftest import NOW
from tests.databases import insert_count
from tests.helpers import build_app, iso, stored_counts

CLIENT_ADDRESS = "203.0.113.77"
FORWARDED_ADDRESS = "198.51.100.23"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; mapsvc-privacy-probe Q7Z) Gecko/20100101 Firefox/128.0"
HEADERS = {"User-Agent": USER_AGENT, "X-Forwarded-For": FORWARDED_ADDRESS}
ENVIRON = {"REMOTE_ADDR": CLIENT_ADDRESS}
DETAILS_MARKER = "unit-7-blue-door"

REPORTS = 300
CATEGORIES = ["checkpoint", "raid", "attack"]

#: True points are drawn well inside the Bishkek area (lat 42.83-42.90, lon 74.49-74.68) in
#: units of 1e-7 degrees, so a published point is practically never clamped to the boundary.
LAT_RANGE = (428_300_000, 429_000_000)
LON_RANGE = (744_900_000, 746_800_000)
NEAR_M = 20.0


def _true_coordinate(rng: random.Random, low: int, high: int) -> float:
    """Return a coordinate with 7 decimals whose 5-, 6- and 7-decimal forms all end in non-zero.

    Published points have 4 decimals, so none can equal such a value at 5, 6 or 7 decimals.
    """
    while True:
        units = rng.randrange(low, high)
        if units % 10 and round(units / 10) % 10 and round(units / 100) % 10:
            return units / 1e7


@dataclass(frozen=True)
class Sent:
    """One report as sent, with what the service answered."""

    lat: float
    lon: float
    category: str
    answer: dict[str, Any]


def _send_batch(client: FlaskClient, seed: int) -> list[Sent]:
    rng = random.Random(seed)
    sent = []
    for i in range(REPORTS):
        lat, lon = _true_coordinate(rng, *LAT_RANGE), _true_coordinate(rng, *LON_RANGE)
        body = {
            "category": CATEGORIES[i % len(CATEGORIES)],
            "lat": lat,
            "lon": lon,
            "occurred_at": iso(NOW - timedelta(minutes=rng.randrange(0, 10 * 24 * 60))),
            "perpetrator": "police",
            "details": f"{DETAILS_MARKER} {i}",
        }
        response = client.post("/api/reports", json=body, headers=HEADERS, environ_base=ENVIRON)
        assert response.status_code == 201, response.get_json()
        sent.append(Sent(lat, lon, body["category"], response.get_json()))
    return sent


#: Invalid reports, each with coordinates of its own that must not be echoed anywhere.
INVALID = [
    {"category": "checkpoint", "lat": 92.8736119, "lon": 74.5711373},
    {"category": "checkpoint", "lat": 42.8736127, "lon": 274.5711381},
    {"category": "party", "lat": 42.8736133, "lon": 74.5711397},
    {"category": "checkpoint", "lat": 41.1736141, "lon": 74.5711419},
    {"category": "checkpoint", "lat": 42.8736153, "lon": 74.5711421, "occurred_at": "2099-01-01T00:00:00Z"},
    {"category": "checkpoint", "lat": 42.8736169, "lon": 74.5711433, "witness": "me"},
    {"category": "checkpoint", "lat": 42.8736171, "lon": 74.5711447, "details": "x" * 20_000},
]


def _send_errors(client: FlaskClient) -> list[int]:
    statuses = [
        client.post("/api/reports", json=body, headers=HEADERS, environ_base=ENVIRON).status_code for body in INVALID
    ]
    form = {"category": "checkpoint", "lat": "42.8736187", "lon": "999.5711459"}
    statuses.append(client.post("/report", data=form, headers=HEADERS, environ_base=ENVIRON).status_code)
    statuses.append(client.get("/api/no-such-thing", headers=HEADERS, environ_base=ENVIRON).status_code)
    statuses.append(client.get("/no-such-page?lat=42.8736191", headers=HEADERS, environ_base=ENVIRON).status_code)
    statuses.append(client.put("/api/layers", headers=HEADERS, environ_base=ENVIRON).status_code)
    statuses.append(client.get("/api/reports", headers=HEADERS, environ_base=ENVIRON).status_code)
    statuses.append(
        client.delete(
            "/api/reports/abc", json={"withdrawal_code": "x"}, headers=HEADERS, environ_base=ENVIRON
        ).status_code
    )
    return statuses


def _coordinate_forms(values: list[float]) -> set[float]:
    """Return each value in full and rounded to 6 and 5 decimals."""
    return {form for v in values for form in (v, round(v, 6), round(v, 5))}


_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:[eE][-+]?\d+)?")


def _numbers_in(text: str) -> set[float]:
    return {float(token) for token in _NUMBER.findall(text)}


def _sent_coordinates(sent: list[Sent]) -> list[float]:
    return [c for s in sent for c in (s.lat, s.lon)]


def _invalid_coordinates() -> list[float]:
    return [float(body[k]) for body in INVALID for k in ("lat", "lon")] + [42.8736187, 999.5711459, 42.8736191]


# --- the database ------------------------------------------------------------------------------


class _Capture(logging.Handler):
    """Keep every record formatted as caplog shows it, tracebacks included.

    caplog lives for one test; this serves every check of the module from one batch.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)-8s %(name)s:%(filename)s:%(lineno)d %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def _everything_logged() -> Iterator[_Capture]:
    """Log every logger at DEBUG into a fresh handler on the root logger (sqlalchemy defaults to WARNING)."""
    names = ["", "sqlalchemy", "werkzeug", "mapsvc", "alembic", "flask"]
    levels = {name: logging.getLogger(name).level for name in names}
    capture = _Capture()
    logging.getLogger().addHandler(capture)
    try:
        for name in names:
            logging.getLogger(name).setLevel(logging.DEBUG)
        yield capture
    finally:
        logging.getLogger().removeHandler(capture)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@dataclass(frozen=True)
class Used:
    """The service after use: the app, what was sent, the answers to errors, the dump and the logs."""

    app: Flask
    sent: list[Sent]  # the first was withdrawn
    statuses: list[int]
    dump: str
    logs: str


@pytest.fixture(scope="module")
def used(tmp_path_factory, migrated_template) -> Iterator[Used]:
    """Send a batch of reports, some errors and a withdrawal with every logger at DEBUG."""
    app = build_app(tmp_path_factory.mktemp("dump"), migrated_template, seed=1066)
    client = app.test_client()
    with _everything_logged() as capture:
        sent = _send_batch(client, seed=2008)
        statuses = _send_errors(client)
        client.delete(
            f"/api/reports/{sent[0].answer['id']}",
            headers={**HEADERS, "X-Withdrawal-Code": sent[0].answer["withdrawal_code"]},
            environ_base=ENVIRON,
        )
    dump = migrated_template.dump(app.config["DATABASE_URL"])
    yield Used(app, sent, statuses, dump, "\n".join(capture.lines))
    app.extensions["mapsvc.store"].dispose()


def test_dump_holds_the_events(used):
    events, reports = stored_counts(used.app)

    assert events > 60
    assert insert_count(used.dump, "events") == events
    assert insert_count(used.dump, "reports") == reports == REPORTS - 1


#: What the checks below read: the database dump and the captured logs.
TRACES = ["dump", "logs"]


@pytest.mark.parametrize("trace", TRACES)
@pytest.mark.parametrize("text", [CLIENT_ADDRESS, FORWARDED_ADDRESS, USER_AGENT, "mapsvc-privacy-probe"])
def test_no_client_trace(used, trace, text):
    assert text not in getattr(used, trace)


@pytest.mark.parametrize("trace", TRACES)
def test_no_report_text(used, trace):
    assert DETAILS_MARKER not in getattr(used, trace)


@pytest.mark.parametrize("trace", TRACES)
def test_no_true_coordinate(used, trace):
    assert _numbers_in(getattr(used, trace)) & _coordinate_forms(_sent_coordinates(used.sent)) == set()


@pytest.mark.parametrize("trace", TRACES)
def test_no_rejected_coordinate(used, trace):
    assert _numbers_in(getattr(used, trace)) & _coordinate_forms(_invalid_coordinates()) == set()


def _cdf(distance: float, category: str) -> float:
    return float(radial_cdf(distance, DEFAULT_POLICIES[category].epsilon()))


def _creators(used: Used) -> list[tuple[Sent, tuple[float, float]]]:
    """Return the reports whose own fresh draw is a published point, each with that point.

    Every other report published a point drawn before it (within the reuse distance of its
    true place; the first report withdrawn). Reports are numbered in the order they were sent,
    so a point's creator is the first report published there.
    """
    with used.app.extensions["mapsvc.store"].reader() as session:
        rows = session.execute(
            select(Report.public_id, Report.id, Event.category, Event.lat, Event.lon).join(
                Event, Event.id == Report.event_id
            )
        ).all()
    first: dict[tuple[str, float, float], tuple[int, str]] = {}
    for public_id, number, category, lat, lon in rows:
        key = (category, lat, lon)
        first[key] = min(first.get(key, (number, public_id)), (number, public_id))
    by_id = {s.answer["id"]: s for s in used.sent[1:]}
    return [(by_id[public_id], (lat, lon)) for (_, lat, lon), (_, public_id) in first.items()]


def _published_errors(used: Used) -> tuple[np.ndarray, np.ndarray]:
    """Return each creating report's distance to its true point, and that distance's C(ρ).

    A fresh draw is made only when no earlier point lies near the true place: the choice depends
    on the true place, not on the draw, so each creator's distance is still a single draw.
    """
    created = _creators(used)
    distances = geodesic_distance_m(
        [s.lat for s, _ in created],
        [s.lon for s, _ in created],
        [p[0] for _, p in created],
        [p[1] for _, p in created],
    )
    cdf = np.array([_cdf(d, s.category) for d, (s, _) in zip(distances, created, strict=True)])
    assert len(created) > 60  # enough for the tests' power
    return distances, cdf


def test_events_near_their_true_point_are_no_more_than_chance(used):
    distances, _ = _published_errors(used)

    near = int(np.sum(distances < NEAR_M))

    # As many as the mechanism gives by chance (there is no exclusion zone, so some may be), not more.
    expected = sum(_cdf(NEAR_M, s.category) for s, _ in _creators(used))
    assert stats.poisson.sf(near - 1, expected) > 1e-4, (near, expected)


def test_truth_rounded_like_a_published_point_appears_no_more_than_chance(used):
    pairs = {(float(a), float(b)) for a, b in re.findall(r"(-?\d+\.\d+),(-?\d+\.\d+)", used.dump)}

    found = sum((round(s.lat, 4), round(s.lon, 4)) in pairs for s in used.sent)

    # Its own draw must land in the truth's 4-decimal cell (within about 14 m) to coincide:
    # C(14 m) per report bounds that chance from above.
    expected = sum(_cdf(14.0, s.category) for s in used.sent)
    assert stats.poisson.sf(found - 1, expected) > 1e-4, (found, expected)


def test_published_distances_follow_the_mechanism(used):
    _, cdf = _published_errors(used)

    # Each distance mapped through its own category's C(ρ) is uniform if it is a single draw.
    result = stats.kstest(cdf, "uniform")

    assert result.pvalue > 1e-3


# --- the logs ----------------------------------------------------------------------------------


def test_errors_were_answered_as_errors(used):
    assert all(400 <= s < 500 for s in used.statuses)
    assert {404, 405, 413, 422} <= set(used.statuses)


def test_logs_were_captured(used):
    # The SQL of every request is logged at DEBUG; without it the log checks would prove nothing.
    assert used.logs.count("INSERT INTO reports") >= len(used.sent)
