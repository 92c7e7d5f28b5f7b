"""The advocates' data page: districts and past documentation uploaded from the browser, on both engines."""

from __future__ import annotations

import html
import io
import re

import pytest
from sqlalchemy import select

from mapsvc.core.roles import Role
from mapsvc.store.advocacy import load_districts
from mapsvc.store.models import AuditEntry
from tests.conftest import BISHKEK
from tests.helpers import sign_in, stored_counts, stored_events
from tests.test_advocacy_cli import districts_frame
from tests.test_import import BAD_ROWS, _when

LAT, LON = BISHKEK
HEADER = "category,lat,lon,time,perpetrator\n"


@pytest.fixture
def advocate(client, app):
    """A signed-in advocate's client and its CSRF token."""
    return client, sign_in(client, app, Role.ADVOCATE)


def upload(client, token, path, data: bytes, filename: str, **fields):
    form = {"csrf_token": token, "file": (io.BytesIO(data), filename), **fields}
    return client.post(path, data=form, content_type="multipart/form-data")


def geojson(name_field: str = "rayon") -> bytes:
    return districts_frame().rename(columns={"rayon": name_field}).to_json().encode()


def csv_rows(*rows: list[str]) -> bytes:
    return (HEADER + "".join(",".join(row) + "\n" for row in rows)).encode()


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def districts(app) -> list[str]:
    with app.extensions["mapsvc.store"].reader() as session:
        return [d.name for d in load_districts(session)]


def audit(app) -> list[tuple[str, str, str | None]]:
    with app.extensions["mapsvc.store"].reader() as session:
        return [(e.actor, e.action, e.detail) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_the_page_offers_both_imports_and_is_linked(advocate):
    client, _ = advocate
    page = client.get("/advocacy/data").get_data(as_text=True)

    assert 'action="/advocacy/data/districts"' in page and 'action="/advocacy/data/reports"' in page
    assert page.count('enctype="multipart/form-data"') == 2 and page.count('name="csrf_token"') == 2
    assert 'href="/advocacy/data"' in client.get("/advocacy/").get_data(as_text=True)


def test_districts_upload_replaces_the_districts_and_is_audited(advocate, app):
    client, token = advocate
    response = upload(client, token, "/advocacy/data/districts", geojson(), "rayons.geojson", name_field="rayon")

    assert response.status_code == 200
    assert "2 districts imported" in text(response)
    assert districts(app) == ["Lenin", "Pervomay"]
    assert audit(app)[-1] == ("advocate-1", "districts_imported", "2 districts")


def test_a_geopackage_upload_is_read_from_memory(advocate, app, tmp_path):
    client, token = advocate
    path = tmp_path / "rayons.gpkg"
    districts_frame(32643).to_file(path, driver="GPKG")

    response = upload(client, token, "/advocacy/data/districts", path.read_bytes(), "rayons.gpkg", name_field="rayon")

    assert response.status_code == 200, text(response)
    assert districts(app) == ["Lenin", "Pervomay"]


@pytest.mark.parametrize(
    ("data", "fields", "message"),
    [
        (geojson(), {}, "no field 'name' for the district names (fields: id, rayon)"),
        (b"{not json", {}, "cannot read the file as GeoJSON or GeoPackage"),
        (None, {}, "choose a file to upload"),
    ],
    ids=["no name field", "not a file GDAL reads", "no file"],
)
def test_bad_district_files_are_named_and_nothing_changes(advocate, app, data, fields, message):
    client, token = advocate
    upload(client, token, "/advocacy/data/districts", geojson(), "good.geojson", name_field="rayon")
    if data is None:
        response = client.post("/advocacy/data/districts", data={"csrf_token": token, "name_field": "rayon"})
    else:
        response = upload(client, token, "/advocacy/data/districts", data, "bad.geojson", **fields)

    assert response.status_code == 422
    assert message in text(response)
    assert districts(app) == ["Lenin", "Pervomay"]


def test_a_trial_run_checks_the_file_and_stores_nothing(advocate, app):
    client, token = advocate
    data = csv_rows(["checkpoint", str(LAT), str(LON), _when(2), "police"], ["raid", str(LAT), str(LON), _when(9), ""])

    response = upload(client, token, "/advocacy/data/reports", data, "old.csv", dry_run="on")

    assert response.status_code == 200
    assert "Trial run: 2 reports would be imported; nothing was stored." in text(response)
    assert stored_counts(app) == (0, 0)
    assert [a for a in audit(app) if a[1] == "reports_imported"] == []


def test_an_import_stores_every_row_fuzzed_with_the_mapping_given(advocate, app):
    client, token = advocate
    data = (
        "Вид,Широта,Долгота,Дата\n"
        f"Рейд,{LAT},{LON},{_when(30, '%d.%m.%Y %H:%M')}\n"
        f"Блокпост,{LAT + 0.01},{LON},{_when(3, '%d.%m.%Y %H:%M')}\n"
    ).encode()
    response = upload(
        client,
        token,
        "/advocacy/data/reports",
        data,
        "archive.csv",
        columns="category=Вид\nlat=Широта\nlon=Долгота\ntime=Дата",
        categories="Рейд=raid\nБлокпост=checkpoint",
        time_format="%d.%m.%Y %H:%M",
        timezone="UTC",
    )

    assert response.status_code == 200, text(response)
    assert "2 reports imported in one transaction" in text(response)
    events = stored_events(app)
    assert sorted(e.category for e in events) == ["checkpoint", "raid"]
    assert all((e.lat, e.lon) != (LAT, LON) for e in events)  # fuzzed like any report
    assert audit(app)[-1] == ("advocate-1", "reports_imported", "2 reports, 0 held")


def test_bad_rows_are_all_named_and_nothing_is_stored(advocate, app):
    client, token = advocate
    good = ["raid", str(LAT), str(LON), _when(3), "police"]
    rows = [good]
    for row, _column in BAD_ROWS:
        rows += [row, good]

    response = upload(client, token, "/advocacy/data/reports", csv_rows(*rows), "bad.csv")

    page = text(response)
    assert response.status_code == 422
    assert f"{len(BAD_ROWS)} bad rows; nothing was stored." in page
    listed = re.findall(r"<li>(row \d+, column [^:]+):", page)
    assert listed == [f"row {3 + 2 * i}, column '{column}'" for i, (_row, column) in enumerate(BAD_ROWS)]
    assert "<code>police raid</code> (1)" in page  # the value to map
    assert stored_counts(app) == (0, 0)


def test_a_broken_mapping_line_is_named(advocate, app):
    client, token = advocate
    data = csv_rows(["raid", str(LAT), str(LON), _when(3), ""])

    response = upload(client, token, "/advocacy/data/reports", data, "a.csv", categories="Raid raid")

    assert response.status_code == 422
    assert "category values takes KEY=VALUE" in text(response)
    assert stored_counts(app) == (0, 0)


def test_uploads_need_the_csrf_token(advocate, app):
    client, _ = advocate
    response = upload(client, "wrong", "/advocacy/data/districts", geojson(), "rayons.geojson", name_field="rayon")

    assert response.status_code in (400, 403)
    assert districts(app) == []


@pytest.mark.parametrize("role", [Role.PEER, Role.MODERATOR, Role.PLANNER])
def test_other_roles_cannot_upload(client, app, role):
    token = sign_in(client, app, role)
    response = upload(client, token, "/advocacy/data/districts", geojson(), "rayons.geojson", name_field="rayon")

    assert response.status_code == 403
    assert districts(app) == []


@pytest.fixture
def small_uploads(app_config):
    """Uploads of at most 64 KB (set before the app is created: settings are read once)."""
    app_config["UPLOAD_MAX_BYTES"] = 64 * 1024


def test_uploads_have_their_own_size_limit_and_other_bodies_keep_theirs(small_uploads, advocate, app):
    client, token = advocate
    big = csv_rows(*[["raid", str(LAT), str(LON), _when(3), ""]] * 2000)  # about 110 KB
    assert len(big) > 64 * 1024

    assert upload(client, token, "/advocacy/data/reports", big, "big.csv").status_code == 413
    assert stored_counts(app) == (0, 0)
    ok = csv_rows(*[["raid", str(LAT), str(LON), _when(3), ""]] * 500)  # about 28 KB: over the 16 KB of other bodies
    assert upload(client, token, "/advocacy/data/reports", ok, "ok.csv", dry_run="on").status_code == 200
    assert client.post("/api/reports", data=ok, content_type="application/json").status_code == 413


def test_after_a_stored_import_the_form_starts_again_as_a_trial_run(advocate, app):
    client, token = advocate
    data = csv_rows(["raid", str(LAT), str(LON), _when(3), ""])
    trial_box = re.compile(r'<input type="checkbox" name="dry_run"\s*checked>')

    tried = upload(client, token, "/advocacy/data/reports", data, "a.csv", dry_run="on", timezone="UTC")
    assert trial_box.search(text(tried)) and 'value="UTC"' in text(tried)  # what was sent, shown again
    stored = upload(client, token, "/advocacy/data/reports", data, "a.csv", timezone="UTC")
    assert "1 reports imported" in text(stored)
    assert trial_box.search(text(stored)) and 'value="UTC"' not in text(stored)
    districts_sent = upload(client, token, "/advocacy/data/districts", geojson(), "r.geojson", name_field="rayon")
    assert trial_box.search(text(districts_sent)) and 'value="rayon"' in text(districts_sent)
