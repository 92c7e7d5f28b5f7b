"""``mapsvc import``: plain CSV with a mapping, Ushahidi's exports, row errors, all or nothing, fuzzing."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from mapsvc.core.geodesy import geodesic_distance_m
from mapsvc.core.policy import DEFAULT_POLICIES, DEFAULT_PRIVACY_LEVEL
from tests.conftest import BISHKEK, NOW
from tests.helpers import bucket_of, stored_counts, stored_events

LAT, LON = BISHKEK
HOUR = timedelta(hours=1)
#: How Ushahidi writes times: no offset (v3's columns say UTC; v2's are the deployment's local time).
NAIVE = "%Y-%m-%d %H:%M:%S"


def _when(hours_ago: float, fmt: str = "%Y-%m-%dT%H:%M:%SZ") -> str:
    return (NOW - timedelta(hours=hours_ago)).strftime(fmt)


def _write(tmp_path: Path, rows: list[list[str]], name: str = "reports.csv") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path = tmp_path / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _plain(tmp_path: Path, *rows: list[str]) -> Path:
    return _write(tmp_path, [["category", "lat", "lon", "time", "perpetrator"], *rows])


def _import(runner, path: Path, *options: str):  # type: ignore[no-untyped-def]
    return runner.invoke(args=["import", str(path), *options])


def test_plain_csv_needs_no_mapping_and_is_stored(app, runner, tmp_path):
    path = _plain(
        tmp_path,
        ["checkpoint", str(LAT), str(LON), _when(2), "police"],
        ["raid", str(LAT + 0.02), str(LON), _when(30), ""],
        ["extortion", str(LAT), str(LON + 0.03), _when(50), "client"],
    )
    result = _import(runner, path)
    assert result.exit_code == 0, result.output
    assert "3 imported" in result.output
    events = stored_events(app)
    assert sorted((e.category, e.perpetrator) for e in events) == [
        ("checkpoint", "police"),
        ("extortion", "client"),
        ("raid", "unknown"),
    ]
    assert all(e.status == "published" and e.trust == "unverified" for e in events)
    raid = next(e for e in events if e.category == "raid")
    assert raid.bucket_start == bucket_of(NOW - 30 * HOUR, "raid")


def test_dry_run_stores_nothing(app, runner, tmp_path):
    path = _plain(tmp_path, ["checkpoint", str(LAT), str(LON), _when(2), "police"])
    result = _import(runner, path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "1 would be imported" in result.output and "dry run: nothing was stored" in result.output
    assert stored_counts(app) == (0, 0)


def test_imported_reports_merge_by_the_usual_rules(app, runner, tmp_path):
    rows = [["checkpoint", str(LAT), str(LON), _when(1.2), "police"] for _ in range(5)]
    result = _import(runner, _plain(tmp_path, *rows))
    assert result.exit_code == 0, result.output
    events = stored_events(app)
    assert len(events) == 1 and events[0].corroborations == 5 and events[0].trust == "corroborated"
    assert stored_counts(app) == (1, 5)


def test_mapping_file_names_columns_values_time_format_and_zone(app, runner, tmp_path):
    path = _write(
        tmp_path,
        [
            ["Type", "Y", "X", "Date", "Who", "Notes"],
            ["Облава", str(LAT), str(LON), (NOW - 3 * HOUR).strftime("%d.%m.%Y %H:%M"), "Милиция", "text"],
        ],
    )
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        'timezone = "Asia/Bishkek"\ntime_format = "%d.%m.%Y %H:%M"\n'
        '[columns]\ncategory = "Type"\nlat = "Y"\nlon = "X"\ntime = "Date"\nperpetrator = "Who"\n'
        '[categories]\n"облава" = "raid"\n[perpetrators]\n"милиция" = "police"\n',
        encoding="utf-8",
    )
    result = _import(runner, path, "--mapping", str(mapping))
    assert result.exit_code == 0, result.output
    (event,) = stored_events(app)
    assert (event.category, event.perpetrator) == ("raid", "police")
    # The time was read in Bishkek (UTC+6): 6 hours earlier in UTC than the digits say.
    assert event.bucket_start == bucket_of(NOW - 9 * HOUR, "raid")
    assert event.details is None  # not mapped, and STORE_DETAILS is off anyway


def _ushahidi_v3(tmp_path: Path) -> Path:
    header = [
        "Post ID", "Post Status", "Created (UTC)", "Updated (UTC)", "Post Date (UTC)", "Contact ID",
        "Contact", "Sets", "Title", "Description", "Location.lat", "Location.lon", "Categories",
    ]  # fmt: skip
    hxl = ["#id", "", "", "", "#date", "", "", "", "", "", "#geo+lat", "#geo+lon", ""]
    created = _when(5, NAIVE)
    rows = [
        ["1", "published", created, "", _when(6, NAIVE), "3", "+996555000111", "", "Raid", "at night\nsecond line",
         str(LAT), str(LON), "Police raid"],
        ["2", "draft", created, "", _when(3, NAIVE), "", "", "", "Post", "", str(LAT + 0.01), str(LON),
         "Checkpoint,Bishkek"],
        ["3", "archived", created, "", _when(4, NAIVE), "", "", "", "Old", "", str(LAT), str(LON), "Checkpoint"],
    ]  # fmt: skip
    return _write(tmp_path, [header, hxl, *rows], "ushahidi.csv")


def test_ushahidi_v3_export_with_default_mapping(app, runner, tmp_path):
    result = _import(runner, _ushahidi_v3(tmp_path), "--category-map", "Police raid=raid", "--category-map", "Bishkek=")
    assert result.exit_code == 0, result.output
    assert "(ushahidi-v3)" in result.output and "1 skipped" in result.output
    events = {e.category: e for e in stored_events(app)}
    assert set(events) == {"raid", "checkpoint"}
    assert events["raid"].status == "published"
    assert events["checkpoint"].status == "pending"  # a draft in Ushahidi waits for a moderator here
    assert events["raid"].bucket_start == bucket_of(NOW - 6 * HOUR, "raid")  # Post Date (UTC)


def test_ushahidi_v2_export_with_default_mapping(app, runner, tmp_path):
    header = ["#", "INCIDENT TITLE", "INCIDENT DATE", "LOCATION", "DESCRIPTION", "CATEGORY", "LATITUDE", "LONGITUDE",
              "APPROVED", "VERIFIED"]  # fmt: skip
    rows = [
        ["1", "t", _when(10, NAIVE), "market", "d", "RAID", str(LAT), str(LON), "YES", "NO"],
        ["2", "t", _when(11, NAIVE), "station", "d", "detention", str(LAT), str(LON + 0.02), "NO", "YES"],
    ]
    result = _import(runner, _write(tmp_path, [header, *rows]), "--format", "ushahidi")
    assert result.exit_code == 0, result.output
    events = {e.category: e for e in stored_events(app)}
    assert events["raid"].status == "published" and events["detention"].status == "pending"
    # INCIDENT DATE is in the deployment's local time: the service's zone (Asia/Bishkek, UTC+6).
    assert events["raid"].bucket_start == bucket_of(NOW - 16 * HOUR, "raid")


def test_pending_option_holds_every_report(app, runner, tmp_path):
    result = _import(runner, _plain(tmp_path, ["raid", str(LAT), str(LON), _when(2), ""]), "--pending")
    assert result.exit_code == 0, result.output
    assert [e.status for e in stored_events(app)] == ["pending"]
    assert app.test_client().get("/api/layers").get_json()["features"] == []


BAD_ROWS = [
    (["checkpoint", "91", str(LON), _when(1), ""], "lat"),
    (["checkpoint", str(LAT), "east", _when(1), ""], "lon"),
    (["checkpoint", str(LAT), str(LON), "yesterday", ""], "time"),
    (["checkpoint", str(LAT), str(LON), "", ""], "time"),
    (["police raid", str(LAT), str(LON), _when(1), ""], "category"),
    (["checkpoint", "51.5", "-0.12", _when(1), ""], "lat, lon"),  # London: outside the service area
    (["checkpoint", str(LAT), str(LON), _when(-2), ""], "time"),  # in the future
    (["checkpoint", str(LAT), str(LON), _when(24 * 400), ""], "time"),  # older than MAX_REPORT_AGE_DAYS
    (["checkpoint", str(LAT), str(LON), _when(1), "cop"], "perpetrator"),
]


def test_bad_rows_are_reported_by_row_and_column_and_nothing_is_stored(app, runner, tmp_path):
    good = ["raid", str(LAT), str(LON), _when(3), "police"]
    rows = [good]
    for row, _column in BAD_ROWS:
        rows += [row, good]
    result = _import(runner, _plain(tmp_path, *rows))
    assert result.exit_code == 1
    listed = [line.strip() for line in result.output.splitlines() if line.startswith("  row ")]
    expected = [f"row {3 + 2 * i}, column '{column}'" for i, (_row, column) in enumerate(BAD_ROWS)]
    assert [line.split(":")[0] for line in listed] == expected
    assert f"{len(BAD_ROWS)} bad rows" in result.output and "nothing was stored" in result.output
    assert stored_counts(app) == (0, 0)


def test_a_bad_last_row_rolls_back_every_stored_row(app, runner, tmp_path):
    rows = [["checkpoint", str(LAT + i * 0.01), str(LON), _when(1), ""] for i in range(6)]
    rows.append(["checkpoint", "north", str(LON), _when(1), ""])
    result = _import(runner, _plain(tmp_path, *rows))
    assert result.exit_code == 1
    assert "row 8, column 'lat'" in result.output
    assert stored_counts(app) == (0, 0)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"category,lat,lon,time\ncheckpoint,42.87,74.57\n", "row 2: the row has 3 fields, the header 4"),
        (b"category,lat,lon,time\ncheckpoint,42.87,74.57,2026-06-15 20:00\n\xff\xfe,1,2,3\n", "not UTF-8"),
        (b"kind,y,x\n", "no column gives the report's category"),
    ],
)
def test_malformed_files_are_refused_whole(app, runner, tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = _import(runner, path)
    assert result.exit_code == 1
    assert expected in result.output
    assert stored_counts(app) == (0, 0)


def test_a_mapping_to_an_unknown_category_is_refused(app, runner, tmp_path):
    path = _plain(tmp_path, ["Raid", str(LAT), str(LON), _when(1), ""])
    result = _import(runner, path, "--category-map", "Raid=raids")
    assert result.exit_code == 1 and "unknown category 'raids'" in result.output


def test_imported_repeats_of_one_place_publish_its_first_draws_again(app, runner, tmp_path):
    """One true point, 400 rows in 400 hourly buckets: 400 events, at the first draw within theta.

    Fresh noise for each row would publish 400 draws whose centroid lies a few metres from the
    truth; reuse publishes draws only until one lands within the reuse distance theta.
    """
    count = 400
    rows = [["checkpoint", str(LAT), str(LON), _when(i + 0.5), ""] for i in range(count)]
    result = _import(runner, _plain(tmp_path, *rows))
    assert result.exit_code == 0, result.output
    events = stored_events(app)
    assert len(events) == count
    points = list(dict.fromkeys((e.lat, e.lon) for e in events))  # distinct, first published first
    theta = DEFAULT_POLICIES["checkpoint"].reuse_distance_m(DEFAULT_PRIVACY_LEVEL)
    distances = geodesic_distance_m(np.full(len(points), LAT), np.full(len(points), LON), *np.transpose(points))
    # Draws farther than theta were each followed by another draw; the first within theta ends it.
    assert np.all(distances[:-1] > theta) and distances[-1] <= theta
    assert len(points) <= 3  # P(more than 3 draws) = (5 e^-4)^3 < 1e-3
    assert all(p in points for p in ((e.lat, e.lon) for e in events))
