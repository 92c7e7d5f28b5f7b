/* mapsvc map page: draws the events and the heat from the JSON API and keeps them fresh.
 * Every text comes translated in the page's #mapsvc-config; nothing here talks to another host. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("mapsvc-config").textContent);
  var wrap = document.getElementById("mapsvc");
  var map = window[wrap.getAttribute("data-map")];
  var policies = {};
  cfg.policy.categories.forEach(function (c) { policies[c.name] = c; });
  // The server's clock, not the phone's, decides "now" and "24 hours ago".
  var clockOffset = Date.parse(cfg.now) - Date.now();
  var eventsLayer = L.layerGroup().addTo(map);
  var heatLayer = L.layerGroup().addTo(map);
  var etags = {};
  var lastEvents = [];
  var statusEl = document.getElementById("map-status");
  var timer = null;

  function S(key, values) {
    return (cfg.strings[key] || key).replace(/\{(\w+)\}/g, function (m, k) {
      return values && values[k] !== undefined ? values[k] : m;
    });
  }
  function serverNow() { return new Date(Date.now() + clockOffset); }
  function iso(d) { return d.toISOString().replace(/\.\d{3}Z$/, "Z"); }
  function ago(bucketStart, at) {
    var h = Math.floor((Date.parse(at || iso(serverNow())) - Date.parse(bucketStart)) / 3600000);
    if (h < 1) return S("just_now");
    return h < 48 ? S("hours_ago", { n: h }) : S("days_ago", { n: Math.floor(h / 24) });
  }
  function distanceText(m) {
    return m < 1000 ? S("metres", { n: Math.round(m / 10) * 10 }) : S("kilometres", { n: (m / 1000).toFixed(1) });
  }

  function chosenCategories() {
    return Array.prototype.filter.call(document.querySelectorAll("input[name=category]"), function (box) {
      return box.checked;
    }).map(function (box) { return box.value; });
  }

  /** The query for the current time control: at, and since for the last 24 h / 7 days. */
  function timeQuery() {
    var mode = document.getElementById("when").value, q = {};
    if (mode === "24h" || mode === "7d") {
      // Rounded to 10 minutes so that refreshes repeat the same URL and can be answered 304.
      var since = serverNow().getTime() - (mode === "24h" ? 1 : 7) * 86400000;
      q.since = iso(new Date(since - (since % 600000)));
    } else if (mode === "at") {
      var v = document.getElementById("at").value;
      if (v) q.at = iso(new Date(Math.min(Date.parse(v), serverNow().getTime())));
    }
    return q;
  }

  function bboxOf(bounds) {
    var b = bounds.pad(0.1), r = function (x) { return x.toFixed(3); };
    return [r(b.getWest()), r(b.getSouth()), r(b.getEast()), r(b.getNorth())].join(",");
  }

  function query(params) {
    return Object.keys(params).filter(function (k) { return params[k]; }).map(function (k) {
      return k + "=" + encodeURIComponent(params[k]);
    }).join("&");
  }

  /** GET with If-None-Match; resolves to the JSON body, or null when unchanged (304). */
  function getJSON(url) {
    var headers = { Accept: "application/json" };
    if (etags[url]) headers["If-None-Match"] = etags[url].tag;
    return fetch(url, { headers: headers, cache: "no-store", credentials: "same-origin" }).then(function (r) {
      if (r.status === 304) return etags[url].body;
      if (!r.ok) throw new Error(String(r.status));
      return r.json().then(function (body) {
        if (r.headers.get("ETag")) etags[url] = { tag: r.headers.get("ETag"), body: body };
        return body;
      });
    });
  }

  function markerFor(feature, at) {
    var p = feature.properties, c = policies[p.category] || {};
    var trust = p.trust || "unverified";
    var label = S("event_label", { category: c.label || p.category, time: ago(p.bucket_start, at), n: p.corroborations }) +
      ". " + S("trust_" + trust);
    var icon = L.divIcon({ html: c.symbol || "", className: "sym trust-" + trust, iconSize: [28, 28], iconAnchor: [14, 14] });
    var ll = feature.geometry.coordinates;
    var marker = L.marker([ll[1], ll[0]], { icon: icon, title: label, alt: label, keyboard: true, riseOnHover: true });
    marker.setOpacity(0.3 + 0.7 * Math.min(1, p.weight));
    var text = document.createElement("span");
    text.textContent = label;  // Leaflet sets a string popup as HTML; the label is text
    marker.bindPopup(text);
    return marker;
  }

  function drawEvents(body) {
    eventsLayer.clearLayers();
    lastEvents = body.features;
    body.features.forEach(function (f) { eventsLayer.addLayer(markerFor(f, body.at)); });
  }

  function drawHeat(body) {
    heatLayer.clearLayers();
    var peak = body.features.reduce(function (m, f) { return Math.max(m, f.properties.intensity); }, 0) || 1;
    heatLayer.addLayer(L.geoJSON(body, {
      interactive: false,
      style: function (f) {
        return { color: "#c2301f", weight: 0.6, fillColor: "#d7301f", fillOpacity: 0.12 + 0.5 * Math.min(1, f.properties.intensity / peak) };
      }
    }));
  }

  // A notice (a saved report sent, or refused) stays on the status line for NOTICE_MS: a refresh
  // finishing meanwhile (the phone back online, a move, the timer) would otherwise replace it unread.
  var NOTICE_MS = 8000, noticeUntil = 0;

  function notice(text) {
    noticeUntil = Date.now() + NOTICE_MS;
    statusEl.textContent = text;
  }

  function setStatus(at, shown, matched) {
    if (Date.now() < noticeUntil) return;
    var when = new Date(Date.parse(at)).toLocaleString(cfg.lang, { dateStyle: "short", timeStyle: "short" });
    var count = matched > shown ? S("shown_some", { n: shown, total: matched }) : S("shown", { n: shown });
    statusEl.textContent = S("updated", { time: when }) + " · " + count;
  }

  /** Fetch the layers for the current view and time; redraw only what changed. */
  function refresh() {
    var cats = chosenCategories(), t = timeQuery(), bbox = bboxOf(map.getBounds());
    if (!cats.length) { eventsLayer.clearLayers(); heatLayer.clearLayers(); return Promise.resolve(); }
    var category = cats.length === cfg.policy.categories.length ? "" : cats.join(",");
    // A phone gets the heaviest (freshest, most confirmed) events up to cfg.limit; the status
    // says when there are more, and the heat layer still counts every event.
    var layersUrl = cfg.urls.layers + "?" + query({ bbox: bbox, category: category, at: t.at, since: t.since, limit: cfg.limit });
    var showHeat = document.getElementById("show-heat").checked;
    var heatUrl = cfg.urls.heat + "?" + query({ bbox: bbox, category: category, at: t.at });
    var jobs = [getJSON(layersUrl), showHeat ? getJSON(heatUrl) : Promise.resolve(null)];
    return Promise.all(jobs).then(function (bodies) {
      drawEvents(bodies[0]);
      if (bodies[1]) drawHeat(bodies[1]); else heatLayer.clearLayers();
      setStatus(bodies[0].at, bodies[0].numberReturned, bodies[0].numberMatched);
      wrap.setAttribute("data-loaded", bodies[0].at);
    }).catch(function () { if (Date.now() >= noticeUntil) statusEl.textContent = S("offline"); });
  }

  function schedule() {
    if (timer) clearInterval(timer);
    timer = setInterval(function () { if (!document.hidden) refresh(); }, cfg.refresh_s * 1000);
  }

  var moved = null;
  map.on("moveend", function () { clearTimeout(moved); moved = setTimeout(refresh, 400); });
  document.getElementById("options").addEventListener("change", function (event) {
    if (event.target.id === "when") document.getElementById("at").hidden = event.target.value !== "at";
    refresh();
  });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });

  /** Near me: the whole area's events come without any hint of where the phone is. */
  function nearMe() {
    var sheet = document.getElementById("near"), list = document.getElementById("near-list");
    sheet.hidden = false;
    document.getElementById("near-title").focus();
    list.textContent = S("near_wait");
    navigator.geolocation.getCurrentPosition(function (pos) {
      var here = pos.coords, bbox = cfg.policy.service_area.bbox.join(",");
      getJSON(cfg.urls.layers + "?" + query({ bbox: bbox })).then(function (body) {
        var near = body.features.map(function (f) {
          var ll = f.geometry.coordinates;
          return { f: f, d: window.mapsvcFuzz.distanceM(here.latitude, here.longitude, ll[1], ll[0]) };
        }).filter(function (x) { return x.d <= 3000; }).sort(function (a, b) { return a.d - b.d; }).slice(0, 8);
        list.textContent = "";
        if (!near.length) { list.textContent = S("near_none", { km: 3 }); return; }
        near.forEach(function (x) {
          var li = document.createElement("li"), p = x.f.properties;
          li.innerHTML = (policies[p.category] || {}).symbol || "";
          li.appendChild(document.createTextNode(" " + S("near_item", {
            category: (policies[p.category] || {}).label || p.category, distance: distanceText(x.d), time: ago(p.bucket_start, body.at)
          })));
          list.appendChild(li);
        });
      }).catch(function () { list.textContent = S("offline"); });
    }, function () { list.textContent = S("here_failed"); }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  }
  document.getElementById("near-me").addEventListener("click", nearMe);
  document.querySelector("[data-close=near]").addEventListener("click", function () {
    document.getElementById("near").hidden = true;
    document.getElementById("near-me").focus();
  });

  /** Leaflet names its own buttons in English: give them the page's language. */
  function nameLeafletControls() {
    [["leaflet-control-zoom-in", "zoom_in"], ["leaflet-control-zoom-out", "zoom_out"]].forEach(function (pair) {
      var button = wrap.querySelector("." + pair[0]);
      if (button) { button.title = S(pair[1]); button.setAttribute("aria-label", S(pair[1])); }
    });
    map.on("popupopen", function (event) {
      var close = event.popup.getElement().querySelector(".leaflet-popup-close-button");
      if (close) { close.title = S("close"); close.setAttribute("aria-label", S("close")); }
    });
  }

  if (map.attributionControl) map.attributionControl.setPrefix("Leaflet");
  nameLeafletControls();
  window.mapsvcMap = { map: map, cfg: cfg, S: S, refresh: refresh, notice: notice, serverNow: serverNow, iso: iso, ago: ago, policies: policies };
  refresh();
  schedule();
})();
