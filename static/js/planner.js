/* mapsvc planner page: pick a session's stops on the map, see the shortest and the safest route
 * over the danger layers, re-plan when the danger changes, export as GPX or a route sheet.
 * The stops stay in this page's memory only: nothing is kept on the device or in an address. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("mapsvc-config").textContent);
  var P = cfg.planner;
  var wrap = document.getElementById("mapsvc");
  var map = window[wrap.getAttribute("data-map")];
  var csrf = (document.querySelector("meta[name=csrf-token]") || {}).content || "";
  var policies = {};
  cfg.policy.categories.forEach(function (c) { policies[c.name] = c; });
  var dangerLayer = L.layerGroup().addTo(map);
  var routeLayer = L.layerGroup().addTo(map);
  var stopLayer = L.layerGroup().addTo(map);
  var points = [];
  var lastDanger = null;
  var planned = null;
  var hint = document.getElementById("plan-hint");
  var statusEl = document.getElementById("map-status");

  function S(key, values) {
    var text = P.strings[key] || cfg.strings[key] || key;
    return text.replace(/\{(\w+)\}/g, function (m, k) { return values && values[k] !== undefined ? values[k] : m; });
  }
  function iso(d) { return d.toISOString().replace(/\.\d{3}Z$/, "Z"); }
  function el(id) { return document.getElementById(id); }

  function weights() {
    var w = {};
    document.querySelectorAll("select[data-category]").forEach(function (s) { w[s.getAttribute("data-category")] = Number(s.value); });
    return w;
  }
  function plannedAt() {
    var v = el("plan-at").value;
    return v ? iso(new Date(Date.parse(v))) : null;
  }

  /** The request the page would send now: kind ("routes" or "sessions") and body. */
  function request() {
    var common = { mode: el("plan-mode").value, alpha: Number(el("alpha").value), weights: weights() };
    var at = plannedAt();
    if (at) common.at = at;
    var ll = points.map(function (p) { return { lat: p.lat, lon: p.lng }; });
    var roundTrip = el("round-trip").checked;
    if (ll.length === 2 && !roundTrip) return { kind: "routes", body: Object.assign({ from: ll[0], to: ll[1] }, common) };
    var stops = roundTrip ? ll.slice(1) : ll.slice(1, -1);
    var end = roundTrip ? ll[0] : ll[ll.length - 1];
    return { kind: "sessions", body: Object.assign({ start: ll[0], stops: stops, end: end }, common) };
  }

  function drawStops() {
    stopLayer.clearLayers();
    var list = el("stops");
    list.textContent = "";
    points.forEach(function (p, i) {
      var last = i === points.length - 1 && i > 0 && !el("round-trip").checked;
      var name = i === 0 ? S("start") : last ? S("end") : S("stop", { n: i });
      stopLayer.addLayer(L.marker(p, { title: name, alt: name, keyboard: false }));
      var li = document.createElement("li");
      li.textContent = name + " ";
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = S("remove");
      remove.setAttribute("aria-label", S("remove") + ": " + name);
      remove.addEventListener("click", function () { points.splice(i, 1); changed(); });
      li.appendChild(remove);
      list.appendChild(li);
    });
    hint.textContent = points.length ? S("pick_more") : S("pick_start");
  }

  function lineOf(route) {
    var legs = route.legs || [route];
    return legs.map(function (leg) {
      return leg.geometry.coordinates.map(function (c) { return [c[1], c[0]]; });
    });
  }

  function summary(route) {
    return S("summary", {
      km: (route.length_m / 1000).toFixed(2), min: Math.round(route.duration_s / 60),
      danger: Math.round(route.in_danger_m), peak: route.peak_risk.toFixed(2)
    });
  }

  function drawPlan(kind, body) {
    routeLayer.clearLayers();
    routeLayer.addLayer(L.polyline(lineOf(body.shortest), { color: "#555", weight: 4, dashArray: "6 6", opacity: 0.9 }));
    routeLayer.addLayer(L.polyline(lineOf(body.safest), { color: "#1565c0", weight: 6, opacity: 0.85 }));
    el("shortest-summary").textContent = summary(body.shortest);
    el("safest-summary").textContent = summary(body.safest);
    var order = el("order");
    if (kind === "sessions") {
      order.hidden = false;
      order.textContent = S("order", { order: body.safest.order.map(function (i) { return S("stop", { n: i + 1 }); }).join(" → ") });
    } else {
      order.hidden = true;
    }
    el("results").hidden = false;
    document.querySelectorAll("form.export").forEach(function (f) {
      f.elements.kind.value = kind;
      f.elements.plan.value = JSON.stringify(planned.body);
    });
    wrap.setAttribute("data-planned", kind + ":" + body.safest.length_m);
  }

  function plan() {
    if (points.length < 2) {
      routeLayer.clearLayers();
      el("results").hidden = true;
      return Promise.resolve();
    }
    var req = request();
    statusEl.textContent = S("planning");
    return fetch(req.kind === "routes" ? P.urls.routes : P.urls.sessions, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(req.body)
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.error || String(r.status));
        planned = req;
        drawPlan(req.kind, body);
        statusEl.textContent = "";
      });
    }).catch(function (e) { statusEl.textContent = S("failed", { error: e.message }); });
  }

  function changed() {
    if (points.length > P.max_stops + 2) points.length = P.max_stops + 2;
    drawStops();
    plan();
  }

  /** The danger layers the plan avoids: each event as a circle as wide as its fuzz radius. */
  function refreshDanger() {
    var w = weights(), cats = Object.keys(w).filter(function (c) { return w[c] > 0; });
    if (!cats.length) { dangerLayer.clearLayers(); return Promise.resolve(); }
    var q = "category=" + cats.join(",") + "&limit=" + cfg.limit;
    var at = plannedAt();
    if (at && Date.parse(at) <= Date.now()) q += "&at=" + encodeURIComponent(at);
    // A start still ahead: the layers of now, each weight decayed on to that moment (as the plan
    // itself does), and what will have faded by then left out.
    var ahead = at ? Math.max(0, (Date.parse(at) - Date.now()) / 1000) : 0;
    return fetch(cfg.urls.layers + "?" + q, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (body) {
        dangerLayer.clearLayers();
        var drawn = [];
        body.features.forEach(function (f) {
          var c = policies[f.properties.category] || {}, ll = f.geometry.coordinates;
          var w = f.properties.weight * (ahead && c.half_life_s ? Math.pow(2, -ahead / c.half_life_s) : 1);
          if (w < cfg.policy.visibility_threshold) return;
          drawn.push(f.id + ":" + w.toFixed(2));
          dangerLayer.addLayer(L.circle([ll[1], ll[0]], {
            radius: c.fuzz_radius_m || 300, color: "#b2182b", weight: 1, fillOpacity: 0.08 + 0.25 * w, interactive: false
          }));
        });
        var signature = drawn.join(",");
        if (lastDanger !== null && signature !== lastDanger && planned) {
          plan().then(function () { statusEl.textContent = S("replanned"); });
        }
        lastDanger = signature;
        wrap.setAttribute("data-danger", String(drawn.length));
      }).catch(function () { statusEl.textContent = cfg.strings.offline; });
  }

  map.on("click", function (e) {
    if (points.length >= P.max_stops + 2) { statusEl.textContent = S("too_many", { n: P.max_stops }); return; }
    points.push(e.latlng);
    changed();
  });
  el("plan-form").addEventListener("change", function (e) {
    if (e.target.id === "alpha") el("alpha-value").textContent = e.target.value;
    if (e.target.matches("select[data-category]") || e.target.id === "plan-at") { lastDanger = null; refreshDanger(); }
    drawStops();
    plan();
  });
  el("plan-form").addEventListener("submit", function (e) { e.preventDefault(); });
  el("clear").addEventListener("click", function () { points = []; routeLayer.clearLayers(); el("results").hidden = true; drawStops(); });

  if (map.attributionControl) {
    map.attributionControl.setPrefix("Leaflet");
    map.attributionControl.addAttribution(P.attribution);
  }
  el("alpha-value").textContent = el("alpha").value;
  if (!P.modes.length) statusEl.textContent = S("no_network");
  drawStops();
  refreshDanger();
  setInterval(function () { if (!document.hidden) refreshDanger(); }, cfg.refresh_s * 1000);
  window.mapsvcPlanner = { map: map, points: function () { return points; }, plan: plan, refreshDanger: refreshDanger };
})();
