"""Routes as GPX 1.1 (written with gpxpy), for phones and GPS devices that follow a track."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gpxpy.gpx

#: Licence of OpenStreetMap data, named in every file made from it.
ODBL_URL = "https://opendatacommons.org/licenses/odbl/1-0/"


@dataclass(frozen=True)
class Track:
    """A named track: one or more segments (legs), each a list of (lon, lat) in degrees."""

    name: str
    segments: Sequence[Sequence[tuple[float, float]]]


@dataclass(frozen=True)
class Waypoint:
    """A named point (start, stop, end) in degrees."""

    name: str
    lon: float
    lat: float


def to_gpx(name: str, tracks: Sequence[Track], waypoints: Sequence[Waypoint], attribution: str) -> str:
    """Return a GPX 1.1 document of the tracks and waypoints, with the data's attribution and licence."""
    document = gpxpy.gpx.GPX()
    document.name = name
    document.creator = "mapsvc"
    document.copyright_author = attribution
    document.copyright_license = ODBL_URL
    for point in waypoints:
        document.waypoints.append(gpxpy.gpx.GPXWaypoint(latitude=point.lat, longitude=point.lon, name=point.name))
    for track in tracks:
        made = gpxpy.gpx.GPXTrack(name=track.name)
        for segment in track.segments:
            made.segments.append(gpxpy.gpx.GPXTrackSegment([gpxpy.gpx.GPXTrackPoint(lat, lon) for lon, lat in segment]))
        document.tracks.append(made)
    return document.to_xml(version="1.1")
