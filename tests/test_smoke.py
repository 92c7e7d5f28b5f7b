from tests.conftest import BISHKEK
from tests.helpers import reported_event


def test_report_appears_in_layers(client, report):
    created = report()
    assert created.status_code == 201
    layers = client.get("/api/layers").get_json()
    assert [f["id"] for f in layers["features"]] == [reported_event(client.application, created).public_id]
    lon, lat = layers["features"][0]["geometry"]["coordinates"]
    assert (lat, lon) != BISHKEK
