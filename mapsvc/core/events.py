"""What the public may see of an event, and the GeoJSON feature the public layers write of it.

:class:`PublicEvent` is the one shape of an event in every public output: the map's layers
(``/api/layers``), the OGC API – Features collections, the advocates' event exports. The
moderation queue shows the same shape with what only staff may see beside it
(:class:`mapsvc.store.moderation.QueueItem`), never inside it. A field added here is shown to
anyone by every one of those outputs.

:func:`features` is the one GeoJSON writer of the layers and the OGC API (which adds its links
to a single item). The advocates' exports write the same events as a table instead
(``mapsvc.services.advocacy.exports``: CSV, GeoPackage, and GeoJSON of the table's rows), with the
id as a column and no weight: an export has no moment to weigh the events at.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from mapsvc.core.moments import iso


class PublicEvent(NamedTuple):
    """An event as the public sees it once published.

    Its public id, category, perpetrator type, fuzzed point (as stored and published), time
    bucket, number of reports (``corroborations``) and trust. Nothing else: no precise time, no
    report's id or text, no status or hold reason (docs/privacy.md). The store reads exactly
    these columns by these names (``mapsvc.store.events.PUBLIC_COLUMNS``).

    A named tuple, not a frozen dataclass: a layer builds one per event shown, and a frozen
    dataclass's ``__init__`` cost several times as much (it sets each field through
    ``object.__setattr__``).
    """

    public_id: str
    category: str
    perpetrator: str
    lat: float
    lon: float
    bucket_start: datetime
    corroborations: int
    trust: str


class LayerEvent(NamedTuple):
    """A public event and its weight at the moment a layer is read."""

    event: PublicEvent
    weight: float


def features(shown: Iterable[LayerEvent]) -> list[dict[str, Any]]:
    """Return events as GeoJSON Point features, as ``/api/layers`` and the OGC API write them.

    Events share few buckets: each bucket is written once (most of a layer's timestamps).
    """
    stamps: dict[datetime, str] = {}
    found = []
    for e, w in shown:
        bucket = e.bucket_start
        found.append(
            {
                "type": "Feature",
                "id": e.public_id,
                "geometry": {"type": "Point", "coordinates": [e.lon, e.lat]},
                "properties": {
                    "category": e.category,
                    "perpetrator": e.perpetrator,
                    "bucket_start": stamps.get(bucket) or stamps.setdefault(bucket, iso(bucket)),
                    "weight": round(w, 2),
                    "corroborations": e.corroborations,
                    "trust": e.trust,
                },
            }
        )
    return found


def feature(shown: LayerEvent) -> dict[str, Any]:
    """Return one event as a GeoJSON Point feature (:func:`features`)."""
    return features([shown])[0]
