"""The app's validated settings: policies, service area, privacy level, clock and randomness."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, current_app

from mapsvc.core.area import CITIES, ServiceArea
from mapsvc.core.fuzz import UniformSource, system_random
from mapsvc.core.heat import DEFAULT_ATOM_RESOLUTION
from mapsvc.core.policy import CategoryPolicy, build_policies


def utc_now() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Settings:
    """Everything the views need from the configuration, checked once at start-up."""

    policies: dict[str, CategoryPolicy]
    area: ServiceArea
    timezone: ZoneInfo
    level: float
    threshold: float
    heat_resolution: int
    store_details: bool
    details_max_length: int
    clock_skew: timedelta
    max_report_age: timedelta
    retention: timedelta
    layer_limit_default: int
    layer_limit_max: int
    intake_answer_s: float
    clock: Callable[[], datetime]
    rng: UniformSource

    def now(self) -> datetime:
        """Return the current time from the configured clock."""
        return self.clock()


def _timezone(config: dict) -> ZoneInfo:  # type: ignore[type-arg]
    name = config["TIMEZONE"]
    if not name:
        area = config["SERVICE_AREA"]
        name = CITIES[area].timezone if isinstance(area, str) and area in CITIES else "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"TIMEZONE {name!r} is not a known IANA time zone") from None


def from_config(config: dict) -> Settings:  # type: ignore[type-arg]
    """Build and check the settings; raise ValueError naming the bad setting."""
    level = float(config["PRIVACY_LEVEL"])
    threshold = float(config["VISIBILITY_THRESHOLD"])
    if not (level > 0 and math.isfinite(level)):
        raise ValueError("PRIVACY_LEVEL must be a positive number")
    if not 0 < threshold < 1:
        raise ValueError("VISIBILITY_THRESHOLD must lie between 0 and 1")
    intake_answer_ms = float(config["INTAKE_ANSWER_MS"])
    if not 0 <= intake_answer_ms <= 10_000:
        raise ValueError("INTAKE_ANSWER_MS must lie between 0 and 10000")
    resolution = int(config["HEAT_RESOLUTION"] or DEFAULT_ATOM_RESOLUTION)
    if not 4 <= resolution <= 10:
        raise ValueError("HEAT_RESOLUTION must lie between 4 and 10")
    if not isinstance(config["QUICK_EXIT_WIPES"], bool):
        # "False" or "no" would otherwise be a true string, and a typo would go unnoticed.
        raise ValueError("QUICK_EXIT_WIPES must be true or false")
    return Settings(
        policies=build_policies(config["CATEGORY_OVERRIDES"]),
        area=ServiceArea.from_config(config["SERVICE_AREA"]),
        timezone=_timezone(config),
        level=level,
        threshold=threshold,
        heat_resolution=resolution,
        store_details=bool(config["STORE_DETAILS"]),
        details_max_length=int(config["DETAILS_MAX_LENGTH"]),
        clock_skew=timedelta(seconds=int(config["CLOCK_SKEW_S"])),
        max_report_age=timedelta(days=int(config["MAX_REPORT_AGE_DAYS"])),
        retention=timedelta(days=int(config["RETENTION_DAYS"])),
        layer_limit_default=int(config["LAYER_LIMIT_DEFAULT"]),
        layer_limit_max=int(config["LAYER_LIMIT_MAX"]),
        intake_answer_s=intake_answer_ms / 1000,
        clock=config["CLOCK"] or utc_now,
        rng=config["FUZZ_RNG"] or system_random(),
    )


def init_app(app: Flask) -> None:
    """Check the configuration and keep the settings on the app."""
    app.extensions["mapsvc.settings"] = from_config(app.config)


def settings() -> Settings:
    """Return the current app's settings."""
    value: Settings = current_app.extensions["mapsvc.settings"]
    return value
