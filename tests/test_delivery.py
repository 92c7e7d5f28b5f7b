"""How responses leave: security headers, CSP nonces, gzip, and cache lifetimes of static assets."""

from __future__ import annotations

import gzip
import re

import pytest

PAGES = ["/", "/report", "/report/withdraw", "/api/categories", "/api/layers", "/no/such/page"]


@pytest.mark.parametrize("path", PAGES)
def test_every_response_has_the_security_headers(client, path):
    headers = client.get(path).headers

    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "'unsafe-inline'" not in csp and "*" not in csp and "http" not in csp
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "geolocation=(self)" in headers["Permissions-Policy"]
    assert "camera=()" in headers["Permissions-Policy"]


def test_inline_scripts_run_only_with_this_responses_nonce(client):
    first, second = client.get("/"), client.get("/")
    nonce = re.search(r"'nonce-([^']+)'", first.headers["Content-Security-Policy"]).group(1)
    html = first.get_data(as_text=True)

    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline, "folium's map set-up is inline"
    assert all(f'nonce="{nonce}"' in attrs or 'type="application/json"' in attrs for attrs in inline)
    assert nonce not in second.get_data(as_text=True)


def test_the_map_page_sets_no_cookie(client):
    assert "Set-Cookie" not in client.get("/").headers


@pytest.mark.parametrize("path", ["/", "/api/categories", "/static/js/map.js"])
def test_text_is_gzipped_for_clients_that_accept_it(client, path):
    response = client.get(path, headers={"Accept-Encoding": "gzip, deflate"})

    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert len(gzip.decompress(response.get_data())) > len(response.get_data())


def test_text_is_plain_for_clients_that_do_not_accept_gzip(client):
    assert "Content-Encoding" not in client.get("/api/categories").headers


def test_gzipped_api_answers_still_revalidate(client):
    first = client.get("/api/layers", headers={"Accept-Encoding": "gzip"})
    again = client.get("/api/layers", headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]})

    assert again.status_code == 304


def test_static_urls_carry_a_content_hash_and_are_immutable(app, client):
    with app.test_request_context():
        from flask import url_for

        url = url_for("static", filename="js/map.js")
    assert re.search(r"\?v=[0-9a-f]{12}$", url)

    with client.get(url) as hashed, client.get("/static/js/map.js") as plain:
        assert "immutable" in hashed.headers["Cache-Control"] and "max-age=31536000" in hashed.headers["Cache-Control"]
        assert "immutable" not in plain.headers.get("Cache-Control", "")


def test_vendored_assets_keep_their_licence_beside_them(app):
    from pathlib import Path

    vendor = Path(app.static_folder) / "vendor"
    for folder in vendor.iterdir():
        assert (folder / "LICENSE").exists(), folder
