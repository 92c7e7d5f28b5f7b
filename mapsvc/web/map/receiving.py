"""A report received over HTTP: who sent it decides where it stands, and its answer leaves at a fixed moment.

The rules of intake are :mod:`mapsvc.services.intake`'s; this adds what only a request knows.
Used by the JSON API and the plain HTML form alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from mapsvc.core.policy import CategoryPolicy
from mapsvc.core.roles import Capability
from mapsvc.core.trust import hold_for
from mapsvc.services import intake
from mapsvc.settings import Settings
from mapsvc.store.db import Store
from mapsvc.store.events import PublishedReport, Receipt, Standing
from mapsvc.store.intake_keys import KeptReceipt
from mapsvc.web.auth.identity import current_identity
from mapsvc.web.hooks import urgency
from mapsvc.web.hooks.holds import is_burst


def standing(policy: CategoryPolicy) -> Standing:
    """Return where the requester's report stands: trusted, held for its category, or for a burst.

    Only reports that will be stored reach here, so invalid ones never count towards a burst;
    a trusted reporter is never held, and is not counted either.
    """
    trusted = current_identity().can(Capability.TRUSTED_REPORTS)
    burst = not trusted and not policy.premoderation and is_burst()
    return Standing(trusted=trusted, hold=hold_for(policy, trusted, burst))


@contextmanager
def _answered_at_the_fixed_moment(settings: Settings) -> Iterator[None]:
    """Hold the answer to a stored (or resent) report until ``INTAKE_ANSWER_MS`` after the request came.

    Merging, reusing and drawing run the same statements, but an insert still costs more than an
    update, and a resend answered from its key costs less than either: the answer waits for a
    fixed moment. A refused report answers at once (the error leaves before the wait): its checks
    read nothing stored.
    """
    started = time.monotonic()
    yield
    urgency.calm()  # nothing left to run: reads may go on while this waits
    time.sleep(max(0.0, started + settings.intake_answer_s - time.monotonic()))


def submit(data: Mapping[str, Any], settings: Settings, store: Store) -> tuple[PublishedReport, Receipt]:
    """Store the requester's report (:func:`mapsvc.services.intake.submit`), answered at the fixed moment."""
    with _answered_at_the_fixed_moment(settings):
        return intake.submit(data, settings, store, standing)


def take(data: Mapping[str, Any], settings: Settings, store: Store, key: str | None = None) -> tuple[KeptReceipt, bool]:
    """Take the requester's report once (:func:`mapsvc.services.intake.take`), answered at the fixed moment."""
    with _answered_at_the_fixed_moment(settings):
        return intake.take(data, settings, store, standing, key)
