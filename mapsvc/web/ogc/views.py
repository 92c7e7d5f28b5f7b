"""OGC API – Features (Part 1: Core, GeoJSON, HTML, OpenAPI 3.0) over the public layers.

QGIS, GDAL and other GIS clients read the public events here directly. One collection per
category that the public map shows as single events; a category shown only as heat (attack,
by default) has no collection at all, so no query can list its events. A collection offers
exactly what ``/api/layers`` offers the public, whoever asks: published events only, fuzzed
points, time bucket, category, perpetrator, corroborations, trust, and the weight at the moment
read.

- Without ``datetime``: the events visible now, as the map shows them (``/api/layers``).
- With ``datetime`` (an instant or an interval, open ends allowed): the events whose time
  bucket meets it, among those the public map showed at some moment it can still show (from
  ``oldest_readable`` minus the category's horizon up to now less its publication delay),
  faded ones included, each with its weight now.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from mapsvc.core.errors import NotFound
from mapsvc.core.events import LayerEvent, feature, features
from mapsvc.core.moments import iso, rounded_down
from mapsvc.core.policy import CategoryPolicy
from mapsvc.services.names import CATEGORY_NAMES
from mapsvc.settings import Settings, settings
from mapsvc.store import get_store
from mapsvc.store.events import oldest_readable
from mapsvc.store.features import FeatureQuery, feature_by_id, feature_page
from mapsvc.web.ogc import params
from mapsvc.web.ogc.openapi import OPENAPI_MEDIA_TYPE, ogc_openapi_document
from mapsvc.web.readcache import Answer, read_cache
from mapsvc.web.responses import encode

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
GEOJSON = "application/geo+json"


def public_collections(s: Settings) -> dict[str, CategoryPolicy]:
    """Return the categories with a collection: those the public map shows as single events."""
    return {name: p for name, p in s.policies.items() if p.public_markers}


def _now(s: Settings) -> datetime:
    """Return the moment of this read: now, rounded as the map's reads are (shared cached answers)."""
    return min(rounded_down(s.now(), s.read_cache.quantum_s), s.now())


def _policy(s: Settings, collection_id: str) -> CategoryPolicy:
    policy = public_collections(s).get(collection_id)
    if policy is None:
        raise NotFound(_("no collection with that id"))
    return policy


def _html() -> bool:
    return params.wants_html(request.args, request.accept_mimetypes.best_match(["application/json", "text/html"]))


def _link(endpoint: str, rel: str, media: str, title: str, **values: Any) -> dict[str, str]:
    return {"href": url_for(endpoint, _external=True, **values), "rel": rel, "type": media, "title": title}


def _self_links(endpoint: str, json_type: str = "application/json", **values: Any) -> list[dict[str, str]]:
    """Return the self and alternate links of a resource in JSON and HTML, the current one as self."""
    html = _html()
    as_json = _link(
        endpoint, "alternate" if html else "self", json_type, _("this document as JSON"), f="json", **values
    )
    as_html = _link(
        endpoint, "self" if html else "alternate", "text/html", _("this document as HTML"), f="html", **values
    )
    return [as_html, as_json] if html else [as_json, as_html]


def _reply(body: dict[str, Any], title: str, media: str = "application/json") -> Response:
    """Answer JSON (tagged, 304 when unchanged) or the same document as a page."""
    if _html():
        return Response(render_template("ogc.html", doc=body, title=title), mimetype="text/html")
    response = Response(encode(body), mimetype=media)
    response.add_etag()
    response.cache_control.no_cache = True
    response.make_conditional(request)
    return response


@bp.get("")
@bp.get("/")
def landing() -> Response:
    """Answer the landing page: what this service is and where its API, conformance and data are."""
    params.check_known(request.args, params.COMMON)
    body = {
        "title": _("mapsvc: public danger map"),
        "description": _("Fuzzed, time-bucketed community reports of police raids, checkpoints and other dangers."),
        "links": [
            *_self_links("ogc.landing"),
            _link("ogc.openapi", "service-desc", OPENAPI_MEDIA_TYPE, _("the API definition")),
            _link("ogc.conformance", "conformance", "application/json", _("conformance classes")),
            _link("ogc.collections", "data", "application/json", _("the collections")),
        ],
    }
    return _reply(body, body["title"])


@bp.get("/conformance")
def conformance() -> Response:
    """List the conformance classes this API implements."""
    params.check_known(request.args, params.COMMON)
    return _reply({"conformsTo": CONFORMANCE, "links": _self_links("ogc.conformance")}, _("conformance classes"))


@bp.get("/api")
def openapi() -> Response:
    """Serve the OpenAPI 3.0 definition of this OGC API."""
    params.check_known(request.args, params.COMMON)
    s = settings()
    document = ogc_openapi_document(s, list(public_collections(s)), url_for("ogc.landing", _external=True))
    response = Response(encode(document), mimetype=OPENAPI_MEDIA_TYPE)
    response.add_etag()
    response.make_conditional(request)
    return response


def _history_start(s: Settings, policy: CategoryPolicy, at: datetime) -> datetime:
    """Return the oldest bucket a collection shows: visible at the oldest moment the map can show."""
    oldest = oldest_readable(at, s.retention, s.policies.values(), s.threshold)
    return oldest - timedelta(seconds=policy.horizon_s(s.threshold))


def _collection(s: Settings, policy: CategoryPolicy) -> dict[str, Any]:
    name = policy.name
    return {
        "id": name,
        "title": str(CATEGORY_NAMES.get(name, name)),
        "description": _(
            "Events of this category: without datetime those on the map now, with it those whose time bucket meets it."
        ),
        "itemType": "feature",
        "crs": [CRS84],
        "extent": {
            "spatial": {"bbox": [list(s.area.bounds)], "crs": CRS84},
            "temporal": {"interval": [[iso(_history_start(s, policy, _now(s))), None]], "trs": GREGORIAN},
        },
        "links": [
            _link(
                "ogc.collection", "self", "application/json", str(CATEGORY_NAMES.get(name, name)), collection_id=name
            ),
            _link("ogc.items", "items", GEOJSON, _("the events"), collection_id=name, f="json"),
            _link("ogc.items", "items", "text/html", _("the events"), collection_id=name, f="html"),
        ],
    }


@bp.get("/collections")
def collections() -> Response:
    """List the collections: one per category the public map shows as single events."""
    params.check_known(request.args, params.COMMON)
    s = settings()
    body = {
        "links": _self_links("ogc.collections"),
        "collections": [_collection(s, p) for p in public_collections(s).values()],
    }
    return _reply(body, _("the collections"))


@bp.get("/collections/<collection_id>")
def collection(collection_id: str) -> Response:
    """Describe one collection and its extent."""
    params.check_known(request.args, params.COMMON)
    s = settings()
    body = _collection(s, _policy(s, collection_id))
    body["links"] = [*_self_links("ogc.collection", collection_id=collection_id), *body["links"][1:]]
    return _reply(body, body["title"])


def _query(s: Settings, policy: CategoryPolicy, at: datetime, history: bool) -> FeatureQuery | None:
    """Return the collection's query before filters: the live map, or its history (None: nothing)."""
    if history:
        newest = at - timedelta(seconds=policy.publication_delay_s)
        return FeatureQuery(policy, at, (_history_start(s, policy, at), newest), s.area.bounds)
    window = policy.visible_buckets(at, s.threshold)
    return None if window is None else FeatureQuery(policy, at, window, s.area.bounds)


def _page_link(rel: str, offset: int, title: str) -> dict[str, str]:
    values = {k: v for k, v in request.args.items() if k not in ("offset", "lang")}
    if "lang" in request.args:
        values["lang"] = str(get_locale())  # the page's language, whatever spelling asked for it
    values["offset"] = str(offset)
    return _link(request.endpoint or "ogc.items", rel, GEOJSON, title, **request.view_args or {}, **values)


def _items_body(s: Settings, policy: CategoryPolicy, at: datetime) -> dict[str, Any]:
    """Return the page of events the request asks for, with its paging links."""
    box = params.bbox(request.args.get("bbox"), s.area.bounds)
    when = params.interval(request.args.get("datetime"))
    limit = params.integer(request.args.get("limit"), "limit", s.layer_limit_default, 1, s.layer_limit_max)
    offset = params.integer(request.args.get("offset"), "offset", 0, 0, params.OFFSET_MAX)
    base = _query(s, policy, at, history=when is not None)
    events: list[LayerEvent] = []
    matched = 0
    if base is not None:
        query = FeatureQuery(
            policy,
            at,
            base.buckets,
            box,
            when.start if when else None,
            when.end if when else None,
            limit,
            offset,
        )
        with get_store().reader() as session:
            events, matched = feature_page(session, query)
    links = _self_links("ogc.items", GEOJSON, collection_id=policy.name, **_kept_args())
    if offset + len(events) < matched:
        links.append(_page_link("next", offset + limit, _("next page")))
    if offset > 0:
        links.append(_page_link("prev", max(0, offset - limit), _("previous page")))
    links.append(
        _link("ogc.collection", "collection", "application/json", _("the collection"), collection_id=policy.name)
    )
    return {
        "type": "FeatureCollection",
        "timeStamp": iso(at),
        "numberMatched": matched,
        "numberReturned": len(events),
        "features": features(events),
        "links": links,
    }


def _kept_args() -> dict[str, str]:
    return {k: v for k, v in request.args.items() if k not in ("f", "lang")}


@bp.get("/collections/<collection_id>/items")
def items(collection_id: str) -> Response:
    """Return a page of a collection's events (``bbox``, ``datetime``, ``limit``, ``offset``) as GeoJSON."""
    params.check_known(request.args, params.ITEMS)
    s = settings()
    policy = _policy(s, collection_id)
    at = _now(s)
    if _html():
        body = _items_body(s, policy, at)
        title = str(CATEGORY_NAMES.get(policy.name, policy.name))
        return Response(render_template("ogc.html", doc=body, title=title), mimetype="text/html")
    key = ("ogc-items", request.host_url, collection_id, *_canonical_query(), at)
    answer = _cached(key, lambda: _items_body(s, policy, at))
    response = Response(answer.body, mimetype=GEOJSON)
    response.set_etag(answer.etag)
    response.cache_control.no_cache = True
    response.gzipped = answer.gzipped  # type: ignore[attr-defined]  # read by delivery.compress
    response.make_conditional(request)
    return response


def _canonical_query() -> tuple[Any, ...]:
    """Return what an items answer depends on of the query: first values, and the language it is in.

    Not the ``lang`` asked for: any value of it, or a repeated parameter, would otherwise be a new
    cache entry and a new query for the same answer.
    """
    args = tuple(sorted((k, v) for k, v in request.args.items() if k != "lang"))
    return args, "lang" in request.args, str(get_locale())


def _cached(key: tuple[Any, ...], build: Any) -> Answer:
    """Return the encoded answer, from the read cache while it is young enough (READ_STALE_S)."""
    cache = read_cache()
    if cache is None:
        return Answer.of(encode(build()))
    return cache.answer(key, lambda: encode(build()))


@bp.get("/collections/<collection_id>/items/<feature_id>")
def item(collection_id: str, feature_id: str) -> Response:
    """Return one event of a collection, if the collection shows it (its history included)."""
    params.check_known(request.args, params.COMMON)
    s = settings()
    policy = _policy(s, collection_id)
    at = _now(s)
    base = _query(s, policy, at, history=True)
    found = None
    if base is not None:
        with get_store().reader() as session:
            found = feature_by_id(session, base, feature_id)
    if found is None:
        raise NotFound(_("no feature with that id in this collection"))
    body = feature(found)
    body["links"] = [
        *_self_links("ogc.item", GEOJSON, collection_id=collection_id, feature_id=feature_id),
        _link("ogc.collection", "collection", "application/json", _("the collection"), collection_id=collection_id),
    ]
    return _reply(body, feature_id, GEOJSON)
