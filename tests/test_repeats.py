"""One place reported 4, 40 and 400 times, each report in a bucket of its own, on every server path.

The bound (docs/privacy.md, "Repeated reports of one place"): a place publishes fresh draws only until
one lands within theta of it, so what it publishes, however often it is reported, is never
nearer the truth than a single draw cut at theta. Checked for the intake itself (many places),
the JSON API, the no-JavaScript form and an import; each check also fails, as a negative
control, on the fresh noise every report used to get. The phone's path is checked in a real
browser (tests/browser).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from scipy import stats

from mapsvc.core.fuzz import fuzz_points, radial_cdf
from mapsvc.core.geodesy import geodesic_distance_m
from mapsvc.services.intake import check, store_checked
from mapsvc.settings import settings
from mapsvc.store import get_store
from tests.conftest import NOW
from tests.helpers import (
    WIDE_AREA,
    build_app,
    event_by_public_id,
    event_of_report,
    far_apart_places,
    iso,
    stored_events,
)

CATEGORY = "raid"  # r = 300 m, one-hour buckets


@dataclass(frozen=True)
class Repeats:
    """Every place's true point and the points its reports published, in order."""

    truths: np.ndarray  # (places, 2)
    published: list[list[tuple[float, float]]]
    epsilon: float
    theta: float

    def centroid_errors(self) -> np.ndarray:
        """Return each place's distance from the truth to the mean of everything it published."""
        centroids = np.array([np.mean(points, axis=0) for points in self.published])
        return geodesic_distance_m(self.truths[:, 0], self.truths[:, 1], centroids[:, 0], centroids[:, 1])

    def distinct(self) -> np.ndarray:
        """Return how many distinct points each place published."""
        return np.array([len(set(points)) for points in self.published])


def assert_no_closer_than_one_draw_within_theta(errors: np.ndarray, epsilon: float, theta: float) -> None:
    """One-sided KS: the errors are not stochastically smaller than a single draw cut at theta."""
    cut = float(radial_cdf(theta, epsilon))
    result = stats.kstest(errors, lambda rho: np.minimum(radial_cdf(rho, epsilon) / cut, 1.0), alternative="greater")
    assert result.pvalue > 1e-3, f"p={result.pvalue:.2g}, median centroid error {np.median(errors):.0f} m"


def _occurred(k: int) -> str:
    return iso(NOW - timedelta(hours=k, minutes=30))  # report k of a place in the k-th hour back


def _repeat(app: Flask, places: int, times: int, send: Callable[[dict[str, Any]], tuple[float, float]]) -> Repeats:
    """Report each of ``places`` far-apart places ``times`` times, report k in the k-th hour back."""
    truths = far_apart_places(places, np.random.default_rng(places * 1000 + times))
    published: list[list[tuple[float, float]]] = [[] for _ in range(places)]
    for k in range(times):
        for i, (lat, lon) in enumerate(truths):
            body = {"category": CATEGORY, "lat": float(lat), "lon": float(lon), "occurred_at": _occurred(k)}
            published[i].append(send(body))
    policy = app.extensions["mapsvc.settings"].policies[CATEGORY]
    level = app.extensions["mapsvc.settings"].level
    return Repeats(truths, published, policy.epsilon(level), policy.reuse_distance_m(level))


def _store_path(app: Flask) -> Callable[[dict[str, Any]], tuple[float, float]]:
    def send(body: dict[str, Any]) -> tuple[float, float]:
        with app.app_context():
            s = settings()
            with get_store().writing() as session:
                report, _ = store_checked(session, check(body, s), s)
        return report.lat, report.lon

    return send


def _point_of(app: Flask, report_id: str) -> tuple[float, float]:
    event = event_by_public_id(app, event_of_report(app, report_id))
    return event.lat, event.lon


def _api_path(app: Flask) -> Callable[[dict[str, Any]], tuple[float, float]]:
    client = app.test_client()

    def send(body: dict[str, Any]) -> tuple[float, float]:
        response = client.post("/api/reports", json=body)
        assert response.status_code == 201, response.get_json()
        return _point_of(app, response.get_json()["id"])

    return send


def _form_path(app: Flask) -> Callable[[dict[str, Any]], tuple[float, float]]:
    client = app.test_client()

    def send(body: dict[str, Any]) -> tuple[float, float]:
        client.get("/report")  # the form's page, as a browser without JavaScript loads it first
        response = client.post("/report", data={k: str(v) for k, v in body.items()})
        assert response.status_code == 201
        [report_id] = re.findall(r'name="report_id" value="([^"]+)"', response.get_data(as_text=True))
        return _point_of(app, report_id)

    return send


@pytest.fixture
def wide_app(tmp_path: Path, migrated_template: Any) -> Any:
    app = build_app(tmp_path, migrated_template, seed=400, SERVICE_AREA=WIDE_AREA)
    yield app
    app.extensions["mapsvc.store"].dispose()


#: (reports of each place, places): fewer places where each is reported more often.
SIZES = [(4, 200), (40, 40), (400, 12)]


@pytest.mark.slow
@pytest.mark.parametrize(("times", "places"), SIZES, ids=[f"{t} reports" for t, _ in SIZES])
def test_repeats_through_intake_never_average_towards_the_truth(wide_app, times, places):
    repeats = _repeat(wide_app, places, times, _store_path(wide_app))

    assert_no_closer_than_one_draw_within_theta(repeats.centroid_errors(), repeats.epsilon, repeats.theta)
    # A place draws again only while its draws land beyond theta: 1.10 draws on average.
    assert repeats.distinct().max() <= 5
    assert repeats.distinct().mean() < 1.1 + 4 * np.sqrt(0.111 / places)  # 4 standard errors


PATHS = {"api": _api_path, "form": _form_path}


@pytest.mark.slow
@pytest.mark.parametrize("path", list(PATHS))
def test_repeats_through_the_api_and_the_form_never_average_towards_the_truth(wide_app, path):
    repeats = _repeat(wide_app, 20, 40, PATHS[path](wide_app))

    assert_no_closer_than_one_draw_within_theta(repeats.centroid_errors(), repeats.epsilon, repeats.theta)
    assert repeats.distinct().max() <= 5


@pytest.mark.slow
def test_repeats_in_an_import_never_average_towards_the_truth(wide_app, tmp_path):
    truths = far_apart_places(20, np.random.default_rng(77))
    buffer = io.StringIO()
    rows = csv.writer(buffer, lineterminator="\n")
    rows.writerow(["category", "lat", "lon", "time"])
    for k in range(40):
        rows.writerows([CATEGORY, lat, lon, _occurred(k)] for lat, lon in truths)
    (tmp_path / "archive.csv").write_text(buffer.getvalue(), encoding="utf-8")

    result = wide_app.test_cli_runner().invoke(args=["import", str(tmp_path / "archive.csv")])

    assert result.exit_code == 0, result.output
    with wide_app.app_context():
        policy = settings().policies[CATEGORY]
        epsilon, theta = policy.epsilon(settings().level), policy.reuse_distance_m(settings().level)
    events = stored_events(wide_app)
    assert len(events) == 20 * 40
    nearest = np.array([np.argmin(np.hypot(truths[:, 0] - e.lat, truths[:, 1] - e.lon)) for e in events])
    published = [[(e.lat, e.lon) for e, i in zip(events, nearest, strict=True) if i == place] for place in range(20)]
    repeats = Repeats(truths, published, epsilon, theta)
    assert_no_closer_than_one_draw_within_theta(repeats.centroid_errors(), epsilon, theta)
    assert repeats.distinct().max() <= 5


@pytest.mark.parametrize(("times", "places"), SIZES, ids=[f"{t} reports" for t, _ in SIZES])
def test_the_check_fails_on_fresh_noise_for_every_report(times, places):
    """Negative control: the centroid of fresh draws (the old server path) fails the same check."""
    epsilon = np.log(4) / 300
    truths = far_apart_places(places, np.random.default_rng(1))
    rng = np.random.default_rng(2)

    class Source:
        def random(self) -> float:
            return float(rng.random())

    lats, lons = fuzz_points(np.repeat(truths[:, 0], times), np.repeat(truths[:, 1], times), epsilon, Source())
    published = [
        list(zip(lats[i * times : (i + 1) * times], lons[i * times : (i + 1) * times], strict=True))
        for i in range(places)
    ]
    repeats = Repeats(truths, published, epsilon, 4 / epsilon)

    with pytest.raises(AssertionError):
        assert_no_closer_than_one_draw_within_theta(repeats.centroid_errors(), epsilon, 4 / epsilon)
