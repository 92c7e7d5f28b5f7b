"""How every response leaves: security headers, a per-response CSP nonce, gzip, cache lifetimes.

An answer over https (``request.is_secure``: the scheme gunicorn takes from the trusted proxy's
``X-Forwarded-Proto``) tells the browser to come back over https only (``HSTS_MAX_AGE_S``).

Pages load nothing from other hosts: the Content-Security-Policy allows only this origin, and
inline scripts (folium's map set-up) run only with the nonce drawn for that one response.
Static assets get content-hashed URLs (``?v=<hash>``) so they can be cached for a year.
"""

from __future__ import annotations

import gzip
import hashlib
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, request

from mapsvc.settings import settings

#: Media types worth compressing; images and tiles are compressed already.
COMPRESSIBLE = {
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/geo+json",
    "image/svg+xml",
}

#: Bodies smaller than this are sent as they are: gzip would save nothing.
MIN_COMPRESS_BYTES = 512

ONE_YEAR_S = 365 * 86400

PERMISSIONS = (
    "geolocation=(self), camera=(), microphone=(), payment=(), usb=(), "
    "browsing-topics=(), display-capture=(), accelerometer=(), gyroscope=(), magnetometer=()"
)


def csp_nonce() -> str:
    """Return the nonce of this response, drawn on first use."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    nonce: str = g.csp_nonce
    return nonce


def content_security_policy(nonce: str) -> str:
    """Return a policy that allows only this origin, and inline code only with the nonce."""
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        f"style-src 'self' 'nonce-{nonce}'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )


def security_headers(response: Response) -> Response:
    """Add the security headers to every response."""
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(csp_nonce())
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Permissions-Policy"] = PERMISSIONS
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    max_age = settings().http.hsts_max_age_s
    if request.is_secure and max_age > 0:
        # Only over https: browsers ignore it over http, and a plain-http test server must stay usable.
        headers["Strict-Transport-Security"] = f"max-age={max_age}"
    return response


@lru_cache(maxsize=256)
def _file_hash(path: str, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def static_version(filename: str) -> str | None:
    """Return a short hash of a static file's content, or None if there is no such file."""
    folder = current_app.static_folder
    if not folder:
        return None
    path = Path(folder) / filename
    try:
        return _file_hash(str(path), path.stat().st_mtime_ns)
    except OSError:
        return None


def hash_static_urls(endpoint: str, values: dict[str, Any]) -> None:
    """Give every ``url_for('static', ...)`` a content hash, so the URL changes with the file."""
    if endpoint == "static" and "filename" in values and "v" not in values:
        version = static_version(values["filename"])
        if version:
            values["v"] = version


def cache_lifetimes(response: Response) -> Response:
    """Cache hashed static assets for a year; ask pages to be revalidated (a page may forbid storing itself)."""
    if request.endpoint == "static" and response.status_code in (200, 304):
        if request.args.get("v"):
            response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR_S}, immutable"
    elif response.mimetype == "text/html" and response.headers.get("Cache-Control") != "no-store":
        response.headers["Cache-Control"] = "no-cache, private"
    return response


@lru_cache(maxsize=64)
def _gzip_static(etag: str, body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=9, mtime=0)


def compress(response: Response) -> Response:
    """Gzip text responses for clients that accept it; static files are compressed once."""
    if (
        response.status_code not in (200, 201, 404, 422, 400)
        or response.mimetype not in COMPRESSIBLE
        or "gzip" not in request.headers.get("Accept-Encoding", "")
        or "Content-Encoding" in response.headers
    ):
        return response
    response.direct_passthrough = False
    source = response.response
    body = response.get_data()
    if hasattr(source, "close"):
        source.close()  # a static file's handle, read now
    if len(body) < MIN_COMPRESS_BYTES:
        return response
    etag, _weak = response.get_etag()
    if request.endpoint == "static" and etag:
        packed = _gzip_static(etag, body)
    elif hasattr(response, "gzipped"):
        packed = response.gzipped()  # a cached answer, compressed once (mapsvc.web.readcache)
    else:
        packed = gzip.compress(body, compresslevel=6, mtime=0)
    response.set_data(packed)
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    if etag:
        # The compressed body is another representation: a weak tag still revalidates it.
        response.set_etag(etag, weak=True)
    return response


def init_app(app: Flask) -> None:
    """Register the header, caching and compression hooks, and the nonce for templates."""
    app.url_defaults(hash_static_urls)
    app.after_request(cache_lifetimes)
    app.after_request(compress)
    app.after_request(security_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
