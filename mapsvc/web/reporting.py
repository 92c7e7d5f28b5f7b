"""Turning a submitted report into a stored one: checks, time bucket, fuzzing or reuse, store.

Shared by the JSON API and the plain HTML form, so both apply exactly the same rules.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from mapsvc.core.decay import floor_to_bucket
from mapsvc.core.fuzz import fuzz_point
from mapsvc.core.policy import PERPETRATORS, CategoryPolicy
from mapsvc.core.reuse import first_within
from mapsvc.core.roles import Capability
from mapsvc.core.trust import hold_for
from mapsvc.errors import InvalidInput
from mapsvc.settings import Settings
from mapsvc.store.db import Store
from mapsvc.store.events import (
    Origin,
    PublishedReport,
    Receipt,
    Standing,
    drawn_points_near,
    lock_category,
    record_report,
)
from mapsvc.web import parse
from mapsvc.web.holds import is_burst
from mapsvc.web.identity import current_identity

#: How far outside the area (in fuzz radii) a device-fuzzed point is still accepted; the
#: noise exceeds 20 radii with probability below 1e-10 at level ln 4.
DEVICE_NOISE_REACH_RADII = 20


def device_reach_m(policy: CategoryPolicy) -> float:
    """Return how far outside the service area a point fuzzed on the device may lie, in metres."""
    return DEVICE_NOISE_REACH_RADII * policy.fuzz_radius_m


#: The standing of a report that no moderator need see first (the demo's, an import row's).
PUBLISHED_AT_ONCE = Standing()

FIELDS = {"category", "lat", "lon", "occurred_at", "perpetrator", "details", "fuzzed_on_device"}


@dataclass(frozen=True)
class CheckedReport:
    """A submitted report that passed every check, its point as sent: exact, or fuzzed on the device.

    It lives in memory only, for one request or one import row; the store keeps what
    :func:`place` makes of it.
    """

    category: str
    perpetrator: str
    lat: float
    lon: float
    fuzzed_on_device: bool
    bucket_start: datetime
    details: str | None


def check(data: Mapping[str, Any], settings: Settings) -> CheckedReport:
    """Check a submitted report: every field, the service area and the time; floor the time to its bucket."""
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise InvalidInput(_("unknown field: %(field)s", field=unknown[0]), unknown[0])
    category = parse.choice(data.get("category"), "category", settings.policies)
    policy = settings.policies[category]
    lat = parse.coordinate(data.get("lat"), "lat", -90, 90)
    lon = parse.coordinate(data.get("lon"), "lon", -180, 180)
    on_device = parse.flag(data.get("fuzzed_on_device"), "fuzzed_on_device")
    # A point fuzzed on the device may have been carried a little outside by the noise.
    if not (settings.area.near(lat, lon, device_reach_m(policy)) if on_device else settings.area.contains(lat, lon)):
        raise InvalidInput(_("lat/lon lie outside the service area"), "lat")
    now = settings.now()
    occurred = (
        now
        if data.get("occurred_at") in (None, "")
        else parse.moment(data["occurred_at"], "occurred_at", settings.timezone)
    )
    if occurred > now + settings.clock_skew:
        raise InvalidInput(_("occurred_at is in the future"), "occurred_at")
    if occurred < now - settings.max_report_age:
        raise InvalidInput(
            _("occurred_at is more than %(days)s days ago", days=settings.max_report_age.days), "occurred_at"
        )
    perpetrator = parse.choice(data.get("perpetrator"), "perpetrator", PERPETRATORS, default="unknown")
    details = parse.text(data.get("details"), "details", settings.details_max_length)
    return CheckedReport(
        category=category,
        perpetrator=perpetrator,
        lat=lat,
        lon=lon,
        fuzzed_on_device=on_device,
        bucket_start=floor_to_bucket(min(occurred, now), policy.bucket_s),
        details=details if settings.store_details else None,
    )


def place(session: Session, report: CheckedReport, settings: Settings) -> PublishedReport:
    """Return what may be stored of a checked report: its published point, never the true one.

    A point fuzzed on the device is only moved inside the service area if the noise took it out.
    An exact point is published at the first point the server drew earlier for the category
    within the reuse distance theta, or else at a fresh draw of the planar Laplace noise
    (moved inside the area, rounded): see :mod:`mapsvc.core.reuse`. The noise is drawn either
    way, so that both take the same time. The caller holds the category's intake lock.
    """
    policy = settings.policies[report.category]
    if report.fuzzed_on_device:
        (lat, lon), origin = settings.area.clamp(report.lat, report.lon), Origin.DEVICE
    else:
        theta = policy.reuse_distance_m(settings.level)
        drawn = drawn_points_near(session, report.category, report.lat, report.lon, theta)
        fresh = settings.area.clamp(*fuzz_point(report.lat, report.lon, policy.epsilon(settings.level), settings.rng))
        reused = first_within(report.lat, report.lon, drawn, theta)
        (lat, lon), origin = (fresh, Origin.DRAWN) if reused is None else (reused, Origin.REUSED)
    return PublishedReport(
        category=report.category,
        perpetrator=report.perpetrator,
        lat=lat,
        lon=lon,
        bucket_start=report.bucket_start,
        details=report.details,
        origin=origin,
    )


def standing(policy: CategoryPolicy) -> Standing:
    """Return where the requester's report stands: trusted, held for its category, or for a burst.

    Only reports that will be stored reach here, so invalid ones never count towards a burst;
    a trusted reporter is never held, and is not counted either.
    """
    trusted = current_identity().can(Capability.TRUSTED_REPORTS)
    burst = not trusted and not policy.premoderation and is_burst()
    return Standing(trusted=trusted, hold=hold_for(policy, trusted, burst))


def submit(data: Mapping[str, Any], settings: Settings, store: Store) -> tuple[PublishedReport, Receipt]:
    """Check, fuzz and store a report in one write transaction.

    What a reporter is shown of the receipt (its id and withdrawal code) is the same whether the
    report was published or held for a burst, merged or not: telling a flooder when the hold
    starts would tell them when to move to another address, and a merge depends on events the
    reporter may not see.
    """
    started = time.monotonic()
    checked = check(data, settings)
    with store.writing() as session:
        stored = store_checked(session, checked, settings, standing(settings.policies[checked.category]))
    # Merging, reusing and drawing run the same statements, but an insert still costs more than an
    # update: the answer waits for a fixed moment (a refused report answers at once: its checks
    # read nothing stored).
    time.sleep(max(0.0, started + settings.intake_answer_s - time.monotonic()))
    return stored


def store_checked(
    session: Session,
    checked: CheckedReport,
    settings: Settings,
    standing: Standing = PUBLISHED_AT_ONCE,
    *,
    category_locked: bool = False,
) -> tuple[PublishedReport, Receipt]:
    """Place a checked report and store it (intake, imports, the demo).

    ``category_locked``: the caller already excludes other writers of events (an import's
    table lock); else the category's intake lock is taken here.
    """
    if not category_locked:
        lock_category(session, checked.category)
    report = place(session, checked, settings)
    policy = settings.policies[checked.category]
    receipt = record_report(
        session, report, policy, settings.level, settings.heat_resolution, standing, category_locked=True
    )
    return report, receipt
