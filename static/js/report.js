/* mapsvc: the 30-second report. The point is fuzzed on this phone before it is sent; only the
 * fuzzed point is ever sent or kept (also in the offline queue). What this phone keeps carries no
 * precise time: receipts keep the day only, and report times are floored to the category's time
 * bucket (the server floors them to the same bucket anyway). */
(function () {
  "use strict";
  var M = window.mapsvcMap, F = window.mapsvcFuzz, S = M.S, cfg = M.cfg, map = M.map;
  var QUEUE = "mapsvc.queue", MINE = "mapsvc.mine";
  var sheet = document.getElementById("report-flow");
  var state = {};
  var drawn = L.layerGroup().addTo(map);

  function load(key) { try { return JSON.parse(localStorage.getItem(key) || "[]"); } catch (e) { return []; } }
  function save(key, list) { try { localStorage.setItem(key, JSON.stringify(list)); } catch (e) { /* full or private */ } }
  /** A time in milliseconds floored to a multiple of bucketS seconds (UTC), as the server stores it. */
  function floorToBucket(ms, bucketS) { var b = (bucketS || 86400) * 1000; return Math.floor(ms / b) * b; }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  /** The phone's calendar day of a time, "YYYY-MM-DD": all a receipt keeps of when. */
  function dayOf(ms) { var d = new Date(ms); return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()); }

  /** Rewrite what earlier versions kept with precise times: receipts keep the day, the queue the bucket. */
  function migrate() {
    var mine = load(MINE), receipts = mine.map(function (m) {
      var day = m.day || (Date.parse(m.at) ? dayOf(Date.parse(m.at)) : undefined);
      return { id: m.id, code: m.code, category: m.category, day: day };
    });
    if (JSON.stringify(receipts) !== JSON.stringify(mine)) save(MINE, receipts);
    var queue = load(QUEUE), floored = queue.map(function (r) {
      var at = Date.parse(r.occurred_at);
      if (!at) return r;
      var bucketS = (M.policies[r.category] || {}).bucket_s;
      return Object.assign({}, r, { occurred_at: M.iso(new Date(floorToBucket(at, bucketS))) });
    });
    if (JSON.stringify(floored) !== JSON.stringify(queue)) save(QUEUE, floored);
  }

  function $(sel) { return sheet.querySelector(sel); }
  function message(name, text) { $("[data-message=" + name + "]").textContent = text; }

  function step(name) {
    Array.prototype.forEach.call(sheet.querySelectorAll("[data-step]"), function (el) {
      el.hidden = el.getAttribute("data-step") !== name;
    });
    state.step = name;
    // While choosing the place, taps on existing symbols go through to the map.
    document.body.classList.toggle("picking", name === "place");
    sheet.setAttribute("data-current", name);
    var first = $("[data-step=" + name + "] button, [data-step=" + name + "] select");
    if (first) first.focus(); else document.getElementById("flow-title").focus();
  }

  function open(event) {
    event.preventDefault();
    state = {};
    drawn.clearLayers();
    sheet.hidden = false;
    document.body.classList.add("reporting");
    $("[data-earlier]").hidden = true;
    $("[data-withdraw]").hidden = true;
    message("place", "");
    message("code", "");
    document.getElementById("flow-details").value = "";
    step("category");
    // A screen reader hears where it is first; the category buttons follow the heading.
    document.getElementById("flow-title").focus();
  }

  function close() {
    sheet.hidden = true;
    document.body.classList.remove("reporting", "picking");
    drawn.clearLayers();
    state = {};
    document.getElementById("report-open").focus();
  }

  function inArea(lat, lon) {
    var b = cfg.policy.service_area.bbox, m = 0.05;
    return lon >= b[0] - m && lat >= b[1] - m && lon <= b[2] + m && lat <= b[3] + m;
  }

  function placeChosen(lat, lon) {
    if (!inArea(lat, lon)) { message("place", S("outside")); return; }
    state.lat = lat;
    state.lon = lon;
    drawn.clearLayers();
    // The true point is shown only on this screen, and only until the preview replaces it.
    drawn.addLayer(L.circleMarker([lat, lon], { radius: 8, color: "#111", weight: 3, fillOpacity: 0 }));
    step("when");
  }

  function here() {
    message("place", S("here_wait"));
    navigator.geolocation.getCurrentPosition(function (pos) {
      placeChosen(pos.coords.latitude, pos.coords.longitude);
    }, function () { message("place", S("here_failed")); }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
  }

  function policy() { return M.policies[state.category]; }

  /** Fuzz on the device and show the circle around the fuzzed point (never around the truth). */
  function preview() {
    var p = policy(), fuzzed = F.publishedPoint(state.lat, state.lon, state.category, p);
    state.lat = state.lon = undefined; // forget the true point
    state.fuzzed = fuzzed;
    var radius = F.inverseRadialCdf(0.9, p.epsilon_per_m);
    drawn.clearLayers();
    var circle = L.circle([fuzzed.lat, fuzzed.lon], { radius: radius, color: "#b2182b", weight: 2, fillOpacity: 0.08 });
    var icon = L.divIcon({ html: p.symbol, className: "sym", iconSize: [28, 28], iconAnchor: [14, 14] });
    drawn.addLayer(circle).addLayer(L.marker([fuzzed.lat, fuzzed.lon], { icon: icon, keyboard: false }));
    message("preview", S("preview"));
    sheet.setAttribute("data-fuzzed", fuzzed.lat + "," + fuzzed.lon);
    step("preview");
    map.fitBounds(circle.getBounds(), { paddingBottomRight: [0, sheet.offsetHeight], maxZoom: 16 });
  }

  function body() {
    var b = { category: state.category, lat: state.fuzzed.lat, lon: state.fuzzed.lon, fuzzed_on_device: true };
    b.perpetrator = document.getElementById("flow-perpetrator").value;
    var details = document.getElementById("flow-details").value.trim();
    if (details) b.details = details;
    // Floored here already, so that neither the request nor the offline queue holds a precise time.
    b.occurred_at = M.iso(new Date(floorToBucket(M.serverNow().getTime() - state.hours * 3600000, policy().bucket_s)));
    return b;
  }

  /** POST one report; resolves to "sent", rejects with "offline" or the server's message. */
  function post(report) {
    return fetch(cfg.urls.reports, {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(report), credentials: "same-origin", cache: "no-store"
    }).then(function (r) {
      return r.json().then(function (answer) {
        if (!r.ok) throw new Error(answer.error || String(r.status));
        var mine = load(MINE);
        mine.push({ id: answer.id, code: answer.withdrawal_code, category: report.category, day: dayOf(Date.parse(report.occurred_at)) });
        save(MINE, mine);
        listMine();
        return answer;
      });
    }, function () { throw new Error("offline"); });
  }

  function send() {
    var report = body();
    message("done", S("sending"));
    step("done");
    var attempt = navigator.onLine === false ? Promise.reject(new Error("offline")) : post(report);
    attempt.then(function (answer) {
      // A pre-moderated category says so (its policy is public); a burst hold is never told.
      var policy = cfg.policy.categories.filter(function (c) { return c.name === report.category; })[0];
      message("done", S(policy && policy.premoderation ? "sent_moderated" : "sent"));
      message("code", S("code", { code: answer.withdrawal_code }));
      state.receipt = { id: answer.id, withdrawal_code: answer.withdrawal_code };
      $("[data-withdraw]").hidden = false;
      M.refresh();
    }, function (error) {
      if (error.message !== "offline") { message("done", S("failed", { error: error.message })); return; }
      var queue = load(QUEUE);
      queue.push(report);
      save(QUEUE, queue);
      message("done", S("queued"));
    });
  }

  /** Send what was saved while offline, oldest first. */
  function flushQueue() {
    var queue = load(QUEUE);
    if (!queue.length || navigator.onLine === false) return;
    var report = queue[0];
    post(report).then(function () {
      save(QUEUE, load(QUEUE).slice(1));
      M.notice(S("queued_sent"));
      M.refresh();
      flushQueue();
    }, function (error) {
      if (error.message === "offline") return;
      // Refused (say, too old by now): do not retry forever, but say so rather than lose it silently.
      save(QUEUE, load(QUEUE).slice(1));
      M.notice(S("failed", { error: error.message }));
      flushQueue();
    });
  }

  function withdraw(id, code) {
    return fetch(cfg.urls.reports + "/" + encodeURIComponent(id), {
      method: "DELETE", headers: { "X-Withdrawal-Code": code }, credentials: "same-origin", cache: "no-store"
    }).then(function (r) {
      if (r.status !== 204 && r.status !== 404) throw new Error(String(r.status));
      save(MINE, load(MINE).filter(function (m) { return m.id !== id; }));
      listMine();
      M.refresh();
    });
  }

  /** A kept day ("YYYY-MM-DD") as the page says it: today, yesterday or n days ago. */
  function dayText(day) {
    var parts = String(day || "").split("-").map(Number), now = M.serverNow();
    if (parts.length !== 3 || !parts[0]) return "";
    var today = new Date(now.getFullYear(), now.getMonth(), now.getDate());
    var days = Math.round((today - new Date(parts[0], parts[1] - 1, parts[2])) / 86400000);
    return days < 1 ? S("today") : days === 1 ? S("yesterday") : S("days_ago", { n: days });
  }

  function listMine() {
    var mine = load(MINE), list = document.getElementById("my-reports-list");
    document.getElementById("my-reports").hidden = !mine.length;
    list.textContent = "";
    mine.forEach(function (m) {
      var li = document.createElement("li"), button = document.createElement("button");
      li.textContent = S("my_report", { category: (M.policies[m.category] || {}).label || m.category, time: dayText(m.day) }) + " ";
      button.type = "button";
      button.className = "link";
      button.textContent = S("withdraw");
      button.addEventListener("click", function () {
        withdraw(m.id, m.code).catch(function () { alert(S("withdraw_failed")); });
      });
      li.appendChild(button);
      list.appendChild(li);
    });
  }

  sheet.addEventListener("click", function (event) {
    var t = event.target.closest("button");
    if (!t) return;
    if (t.hasAttribute("data-category")) { state.category = t.getAttribute("data-category"); message("place", S("tap_map")); step("place"); }
    else if (t.getAttribute("data-place") === "here") here();
    else if (t.getAttribute("data-when") === "earlier") { $("[data-earlier]").hidden = false; $("[data-earlier] button").focus(); }
    else if (t.hasAttribute("data-when")) { state.hours = Number(t.getAttribute("data-when")); step("details"); }
    else if (t.getAttribute("data-next") === "preview") preview();
    else if (t.hasAttribute("data-send")) send();
    else if (t.hasAttribute("data-withdraw")) {
      withdraw(state.receipt.id, state.receipt.withdrawal_code).then(function () {
        message("done", S("withdrawn")); message("code", ""); t.hidden = true;
      }, function () { message("done", S("withdraw_failed")); });
    } else if (t.hasAttribute("data-cancel")) close();
  });
  map.on("click", function (event) {
    if (!sheet.hidden && state.step === "place") placeChosen(event.latlng.lat, event.latlng.lng);
  });
  document.getElementById("report-open").addEventListener("click", open);
  document.getElementById("forget").addEventListener("click", function () {
    [MINE, F.PUBLISHED_KEY].forEach(function (k) { localStorage.removeItem(k); });
    listMine();
  });
  window.addEventListener("online", flushQueue);
  migrate();
  listMine();
  flushQueue();
})();
