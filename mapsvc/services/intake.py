"""Turning a submitted report into a stored one: checks, time bucket, fuzzing or reuse, store.

Shared by the JSON API and the plain HTML form (through :mod:`mapsvc.web.map.receiving`, which
knows who sent a report and when to answer), the imports and the demo, so all apply exactly the
same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mapsvc.core.decay import floor_to_bucket
from mapsvc.core.errors import InvalidInput
from mapsvc.core.fuzz import fuzz_point
from mapsvc.core.policy import PERPETRATORS, CategoryPolicy
from mapsvc.core.reuse import first_within
from mapsvc.services import parse
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
from mapsvc.store.intake_keys import KeptReceipt, forget_expired, recall, remember

#: How far outside the area (in fuzz radii) a device-fuzzed point is still accepted; the
#: noise exceeds 20 radii with probability below 1e-10 at level ln 4.
DEVICE_NOISE_REACH_RADII = 20


def device_reach_m(policy: CategoryPolicy) -> float:
    """Return how far outside the service area a point fuzzed on the device may lie, in metres."""
    return DEVICE_NOISE_REACH_RADII * policy.fuzz_radius_m


#: Where a report stands once its category is known (trusted, held for its category or a burst),
#: asked of whoever received it: only reports that will be stored are asked about.
StandingOf = Callable[[CategoryPolicy], Standing]

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


def submit(
    data: Mapping[str, Any], settings: Settings, store: Store, standing_of: StandingOf
) -> tuple[PublishedReport, Receipt]:
    """Check, fuzz and store a report in one write transaction.

    What a reporter is shown of the receipt (its id and withdrawal code) is the same whether the
    report was published or held for a burst, merged or not: telling a flooder when the hold
    starts would tell them when to move to another address, and a merge depends on events the
    reporter may not see.
    """
    checked = check(data, settings)
    where = standing_of(settings.policies[checked.category])
    with store.writing() as session:
        return store_checked(session, checked, settings, where)


def take(
    data: Mapping[str, Any], settings: Settings, store: Store, standing_of: StandingOf, key: str | None = None
) -> tuple[KeptReceipt, bool]:
    """Take a report once: store it (as :func:`submit`), or answer a resend of its idempotency key.

    A report sent with a key the store knows was stored before (the answer was lost on the way,
    or the sender pressed twice): it is answered with the first one's receipt and stored no
    second time, whatever its body says now (a resend a day later might be refused as too old).
    Two sends of one key at once may both find no row and go on to store the report: the second
    transaction to write the key's row breaks its primary key, rolls back (its report with it), and
    is answered with the first one's receipt. Returns the receipt and whether it is a resend's.
    """
    kept = _recalled(store, key)
    if kept is not None:
        return kept, True
    return _store_once(data, settings, store, standing_of, key)


def _recalled(store: Store, key: str | None) -> KeptReceipt | None:
    if key is None:
        return None
    with store.reader() as session:
        return recall(session, key)


def _store_once(
    data: Mapping[str, Any], settings: Settings, store: Store, standing_of: StandingOf, key: str | None
) -> tuple[KeptReceipt, bool]:
    """Store a report and its key's row in one transaction, both or neither; or find the send that came first."""
    checked = check(data, settings)
    policy = settings.policies[checked.category]
    today = settings.now().astimezone(UTC).date()
    where = standing_of(policy)  # the limits' store is asked before the write, which waits for nothing else
    try:
        with store.writing() as session:
            receipt = store_checked(session, checked, settings, where)[1]
            kept = KeptReceipt(report_id=receipt.report_id, withdrawal_code=receipt.withdrawal_code)
            if key is not None:
                remember(session, key, kept, resends_end(checked.bucket_start, policy, settings))
                forget_expired(session, today)
    except IntegrityError:
        kept_before = _recalled(store, key)
        if kept_before is None:
            raise
        return kept_before, True
    return kept, False


def resends_end(bucket_start: datetime, policy: CategoryPolicy, settings: Settings) -> date:
    """Return the first UTC day on which no resend of a report of this bucket can be accepted any more.

    A resend is accepted while its time is no older than ``MAX_REPORT_AGE_DAYS``; the time it
    says lies before the bucket's end plus the clock skew allowed (a report of the future is
    filed under now's bucket). So from the day after that moment plus the age, every resend of
    the report would be refused as too old, and its key is no longer needed.
    """
    last = bucket_start + timedelta(seconds=policy.bucket_s) + settings.clock_skew + settings.max_report_age
    return last.astimezone(UTC).date() + timedelta(days=1)


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
