"""Turning a submitted report into a stored one: checks, fuzzing, time bucket, store.

Shared by the JSON API and the plain HTML form, so both apply exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _

from mapsvc.core.decay import floor_to_bucket
from mapsvc.core.fuzz import fuzz_point
from mapsvc.core.policy import PERPETRATORS, CategoryPolicy
from mapsvc.core.roles import Capability
from mapsvc.core.trust import hold_for
from mapsvc.errors import InvalidInput
from mapsvc.settings import Settings
from mapsvc.store.db import Store
from mapsvc.store.events import PublishedReport, Receipt, Standing, record_report
from mapsvc.web import parse
from mapsvc.web.holds import is_burst
from mapsvc.web.identity import current_identity

#: How far outside the area (in fuzz radii) a device-fuzzed point is still accepted; the
#: noise exceeds 20 radii with probability below 1e-10 at level ln 4.
DEVICE_NOISE_REACH_RADII = 20

FIELDS = {"category", "lat", "lon", "occurred_at", "perpetrator", "details", "fuzzed_on_device"}


def publish(data: Mapping[str, Any], settings: Settings) -> PublishedReport:
    """Check a submitted report and return what may be stored of it.

    The true point exists only inside this function: it is fuzzed (unless the device already
    did so), moved inside the service area if the noise took it out, and rounded.
    """
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise InvalidInput(_("unknown field: %(field)s", field=unknown[0]), unknown[0])
    category = parse.choice(data.get("category"), "category", settings.policies)
    policy = settings.policies[category]
    lat = parse.coordinate(data.get("lat"), "lat", -90, 90)
    lon = parse.coordinate(data.get("lon"), "lon", -180, 180)
    on_device = parse.flag(data.get("fuzzed_on_device"), "fuzzed_on_device")
    # A point fuzzed on the device may have been carried a little outside by the noise.
    reach = DEVICE_NOISE_REACH_RADII * policy.fuzz_radius_m if on_device else 0.0
    if settings.area.distance_m(lat, lon) > reach:
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
    if not on_device:
        lat, lon = fuzz_point(lat, lon, policy.epsilon(settings.level), settings.rng)
    lat, lon = settings.area.clamp(lat, lon)
    return PublishedReport(
        category=category,
        perpetrator=perpetrator,
        lat=lat,
        lon=lon,
        bucket_start=floor_to_bucket(min(occurred, now), policy.bucket_s),
        details=details if settings.store_details else None,
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

    The receipt is the same whether the report was published or held for a burst: telling a
    flooder when the hold starts would tell them when to move to another address.
    """
    report = publish(data, settings)
    policy = settings.policies[report.category]
    with store.writing() as session:
        receipt = record_report(session, report, policy, settings.level, settings.heat_resolution, standing(policy))
    return report, receipt
