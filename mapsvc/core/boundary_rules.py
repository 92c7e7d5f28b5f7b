"""What a boundary file must meet whatever its format: its errors, its result and the CRSs accepted.

A CRS is only ever made from an EPSG code, by pyproj from its own database, and must be 2D
geographic or projected: a vertical CRS (EPSG:5773) would swap the axes without a word, a
geocentric or 3D one (EPSG:4978, EPSG:4979) has a third axis a boundary file does not carry.
No CRS definition from a file (WKT or PROJ text) is ever parsed: PROJ opens any grid file or URL
such a text names. PROJ's network is switched off when this module is imported, whatever
``PROJ_NETWORK`` says: nothing read here needs a grid from another host.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyproj import CRS
from pyproj.exceptions import CRSError
from pyproj.network import set_network_enabled  # type: ignore[attr-defined]  # public, re-exported untyped
from shapely.geometry.base import BaseGeometry

set_network_enabled(False)

UNREADABLE = "cannot read the file as GeoJSON or GeoPackage"


class DistrictFileError(ValueError):
    """A boundary file cannot be used; the message says why."""


@dataclass(frozen=True)
class Boundaries:
    """A boundary file's features: each one's name value and geometry, and the file's CRS."""

    names: list[object]
    geometries: list[BaseGeometry | None]
    crs: CRS | None


def readable_size(limit: int) -> str:
    """Return a size limit as the messages give it: "32 MB", or "1000 bytes" below a megabyte."""
    return f"{limit / 2**20:.0f} MB" if limit >= 2**20 else f"{limit} bytes"


def too_many(max_features: int) -> DistrictFileError:
    """Return the error for a file with more than ``max_features`` features."""
    return DistrictFileError(f"the file holds more than {max_features} districts")


def too_detailed(max_points: int) -> DistrictFileError:
    """Return the error for a file past the points budget, saying what to do."""
    return DistrictFileError(
        f"the file is too detailed: it holds more than {max_points} points"
        " (simplify the boundaries, e.g. with QGIS's Simplify, or drop fields that are not needed)"
    )


def no_field(name_field: str, fields: list[str]) -> DistrictFileError:
    """Return the error for a missing name field, naming the fields there are."""
    return DistrictFileError(f"no field {name_field!r} for the district names (fields: {', '.join(fields)})")


def plane_crs(code: int, subject: str) -> CRS:
    """Return the CRS of an EPSG code if it is 2D geographic or projected; refuse any other.

    Parameters
    ----------
    code : int
        The EPSG code.
    subject : str
        What named the code, for the message ("the file's crs member").

    Raises
    ------
    DistrictFileError
        If pyproj knows no such code, or its CRS is vertical, geocentric, compound, 3D or other.

    """
    try:
        crs = CRS.from_epsg(code)
    except CRSError:
        raise DistrictFileError(f"{subject} names an EPSG code that does not exist") from None
    if not (crs.is_geographic or crs.is_projected) or len(crs.axis_info) != 2:
        raise DistrictFileError(
            f"{subject} names EPSG:{code}, which is not a 2D geographic or projected coordinate reference system"
            " (districts need longitude/latitude, as EPSG:4326, or a map projection, as a UTM zone)"
        )
    return crs
