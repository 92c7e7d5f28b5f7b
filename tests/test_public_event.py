"""The public shape of an event: what it holds, and the one GeoJSON feature every public layer writes of it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import orjson

from mapsvc.core.events import LayerEvent, PublicEvent, feature, features
from mapsvc.store.events import PUBLIC_COLUMNS
from mapsvc.store.moderation import QueueItem

BUCKET = datetime(2026, 6, 15, 21, 0, tzinfo=UTC)
EVENT = PublicEvent("abc", "checkpoint", "police", 42.8746, 74.5698, BUCKET, 3, "corroborated")


def test_the_public_shape_holds_only_what_the_public_may_see():
    # A new field here is shown by /api/layers, the OGC API and the advocates' exports: see docs/privacy.md first.
    assert PublicEvent._fields == (
        "public_id",
        "category",
        "perpetrator",
        "lat",
        "lon",
        "bucket_start",
        "corroborations",
        "trust",
    )
    assert tuple(c.key for c in PUBLIC_COLUMNS) == PublicEvent._fields


def test_the_queue_keeps_staff_fields_beside_the_public_shape_not_in_it():
    staff = {f.name for f in dataclasses.fields(QueueItem)} - {"event"}

    assert staff == {"status", "held_reason", "details", "reports"}
    assert not staff & set(PublicEvent._fields)


def test_a_feature_is_written_in_the_documented_order():
    written = orjson.dumps(feature(LayerEvent(EVENT, 0.4567)))

    assert written == (
        b'{"type":"Feature","id":"abc","geometry":{"type":"Point","coordinates":[74.5698,42.8746]},'
        b'"properties":{"category":"checkpoint","perpetrator":"police","bucket_start":"2026-06-15T21:00:00Z",'
        b'"weight":0.46,"corroborations":3,"trust":"corroborated"}}'
    )


def test_features_are_the_features_of_each_event():
    other = EVENT._replace(public_id="def", bucket_start=BUCKET.replace(hour=20))
    shown = [LayerEvent(EVENT, 0.5), LayerEvent(other, 0.25), LayerEvent(EVENT._replace(public_id="ghi"), 0.5)]

    assert features(shown) == [feature(e) for e in shown]
    assert features([]) == []
