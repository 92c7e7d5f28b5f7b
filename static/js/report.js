/* mapsvc: the 30-second report. The point is fuzzed on this phone before it is sent; only the
 * fuzzed point is ever sent or kept (also in the queue). What this phone keeps carries no precise
 * time: receipts keep the day only, and report times are floored to the category's time bucket
 * (the server floors them to the same bucket anyway).
 *
 * Every report goes into the queue first, with a random key made once for it (128 bits from
 * crypto.getRandomValues), and leaves it only when the service says it is stored (2xx) or refuses
 * it for good (a 4xx other than 408 and 429: the peer is told why, until she dismisses it). Any
 * other answer (5xx, 408, 429, a proxy's 502/503/504), no connection or a reset connection: it
 * stays, and is tried again after a random wait that doubles with each failure (full jitter,
 * as Retry-After asks if longer), when the phone is back online and when the page loads. Every
 * try carries the key (Idempotency-Key): the service stores a report once, however often it is
 * sent, and answers a resend with the first answer. */
(function () {
  "use strict";
  var M = window.mapsvcMap, F = window.mapsvcFuzz, S = M.S, cfg = M.cfg, map = M.map;
  var QUEUE = "mapsvc.queue", MINE = "mapsvc.mine", REFUSED = "mapsvc.refused";
  var RETRY_BASE_MS = cfg.retry_ms.base, RETRY_MAX_MS = cfg.retry_ms.max, RETRY_AFTER_MAX_MS = 3600000;
  // A try that has no answer by then is given up and made again later (the key keeps it once).
  var POST_TIMEOUT_MS = 60000;
  var sheet = document.getElementById("report-flow");
  /** The session's CSRF token the page was served with (empty when not signed in): writes with a session need it. */
  function csrf() { return (document.querySelector("meta[name=csrf-token]") || {}).content || ""; }
  var state = {};
  var drawn = L.layerGroup().addTo(map);

  // A list that cannot be written (a private window, a full storage) is kept in memory while the
  // page is open: a report is sent all the same, it only does not outlive the page.
  var unsaved = {};
  function load(key) {
    if (unsaved[key]) return unsaved[key].slice();
    try { return JSON.parse(localStorage.getItem(key) || "[]"); } catch (e) { return []; }
  }
  function save(key, list) {
    try { localStorage.setItem(key, JSON.stringify(list)); delete unsaved[key]; } catch (e) { unsaved[key] = list.slice(); }
  }
  function drop(key) { delete unsaved[key]; try { localStorage.removeItem(key); } catch (e) { /* private */ } }
  /** A time in milliseconds floored to a multiple of bucketS seconds (UTC), as the server stores it. */
  function floorToBucket(ms, bucketS) { var b = (bucketS || 86400) * 1000; return Math.floor(ms / b) * b; }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  /** The phone's calendar day of a time, "YYYY-MM-DD": all a receipt keeps of when. */
  function dayOf(ms) { var d = new Date(ms); return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()); }

  /** A new report's key: 128 random bits in URL-safe base64 (22 characters), made once and sent with every try. */
  function newKey() {
    var words = crypto.getRandomValues(new Uint32Array(4)), bytes = "";
    Array.prototype.forEach.call(words, function (w) {
      for (var i = 0; i < 4; i++) bytes += String.fromCharCode((w >>> (8 * i)) & 255);
    });
    return btoa(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  /** Rewrite what earlier versions kept: receipts keep the day, the queue the bucket; queued reports get a key. */
  function migrate() {
    var mine = load(MINE), receipts = mine.map(function (m) {
      var day = m.day || (Date.parse(m.at) ? dayOf(Date.parse(m.at)) : undefined);
      return { id: m.id, code: m.code, category: m.category, day: day };
    });
    if (JSON.stringify(receipts) !== JSON.stringify(mine)) save(MINE, receipts);
    var queue = load(QUEUE), floored = queue.map(function (r) {
      var at = Date.parse(r.occurred_at), kept = Object.assign({}, r, { key: r.key || newKey() });
      if (!at) return kept;
      var bucketS = (M.policies[r.category] || {}).bucket_s;
      return Object.assign(kept, { occurred_at: M.iso(new Date(floorToBucket(at, bucketS))) });
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

  /** A Retry-After in milliseconds (seconds or an HTTP date), 0 when absent; at most an hour. */
  function retryAfterMs(response) {
    var value = (response.headers.get("Retry-After") || "").trim(), ms = 0;
    if (/^\d+$/.test(value)) ms = Number(value) * 1000;
    else if (value && !isNaN(Date.parse(value))) ms = Date.parse(value) - M.serverNow().getTime();
    return Math.min(Math.max(ms, 0), RETRY_AFTER_MAX_MS);
  }

  /** Keep a receipt (once: a resend is answered with the same one). */
  function keepReceipt(report, answer) {
    var mine = load(MINE);
    if (mine.some(function (m) { return m.id === answer.id; })) return;
    mine.push({ id: answer.id, code: answer.withdrawal_code, category: report.category, day: dayOf(Date.parse(report.occurred_at)) });
    save(MINE, mine);
    listMine();
  }

  /** Try to hand one queued report over.
   * Resolves to {stored: answer}, {refused: reason} or {kept: least wait in ms, offline: no answer at all}. */
  function post(entry) {
    var report = Object.assign({}, entry), abort = new AbortController();
    delete report.key;
    var timeout = setTimeout(function () { abort.abort(); }, POST_TIMEOUT_MS);
    return fetch(cfg.urls.reports, {
      method: "POST",
      headers: {
        "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": entry.key, "X-CSRF-Token": csrf()
      },
      body: JSON.stringify(report), credentials: "same-origin", cache: "no-store", signal: abort.signal
    }).then(function (r) {
      clearTimeout(timeout);
      if (r.ok) {
        // A 2xx without a receipt is no proof (a proxy's page): try again; the key keeps it once.
        return r.json().then(function (answer) {
          if (!answer || !answer.id) return { kept: 0 };
          keepReceipt(report, answer);
          return { stored: answer };
        }, function () { return { kept: 0 }; });
      }
      if (r.status < 400 || r.status >= 500 || r.status === 408 || r.status === 429) return { kept: retryAfterMs(r) };
      return r.json().then(function (answer) {
        // The page's CSRF token is not the session's (signed in or out since it loaded): the report is
        // not at fault; it waits, and a page loaded again (with the session's token) sends it.
        if (r.status === 403 && answer && answer.field === "csrf_token") return { kept: 0 };
        return { refused: (answer && answer.error) || String(r.status) };
      }, function () { return { refused: String(r.status) }; });
    }, function () {  // no connection, a reset or refused connection, or no answer in time
      clearTimeout(timeout);
      return { kept: 0, offline: true };
    });
  }

  var flushing = false, failures = 0, retryTimer = null, retryAt = 0;

  /** The waiting line: how many reports this phone still holds; refused ones stay listed until dismissed. */
  function showOutbox() {
    var waiting = load(QUEUE).length, refused = load(REFUSED);
    var waitingEl = document.getElementById("outbox-waiting"), refusedEl = document.getElementById("outbox-refused");
    waitingEl.hidden = !waiting;
    document.getElementById("outbox-count").textContent = waiting ? S("outbox_waiting", { n: waiting }) : "";
    refusedEl.hidden = !refused.length;
    var list = document.getElementById("outbox-refused-list");
    list.textContent = "";
    refused.forEach(function (r) {
      var li = document.createElement("li");
      li.textContent = S("outbox_refused", { category: (M.policies[r.category] || {}).label || r.category, error: r.error });
      list.appendChild(li);
    });
    document.getElementById("outbox").hidden = !waiting && !refused.length;
  }

  /** Try again later: a random wait up to base * 2^failures (capped), or longer if Retry-After says so. */
  function retryLater(afterMs) {
    failures += 1;
    var ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * Math.pow(2, Math.min(failures - 1, 30)));
    var wait = Math.max(Math.random() * ceiling, afterMs || 0);
    clearTimeout(retryTimer);
    retryAt = Date.now() + wait;
    retryTimer = setTimeout(flushQueue, wait);
  }

  /** Say on the report sheet what became of the report it sent; return whether it had to wait first. */
  function tell(entry, outcome) {
    if (!state.sending || state.sending.key !== entry.key) return true;
    var waited = state.sending.waited;
    if (outcome.stored) {
      var answer = outcome.stored;
      // A pre-moderated category says so (its policy is public); a burst hold is never told.
      var policy = cfg.policy.categories.filter(function (c) { return c.name === entry.category; })[0];
      message("done", S(policy && policy.premoderation ? "sent_moderated" : "sent"));
      message("code", S("code", { code: answer.withdrawal_code }));
      state.receipt = { id: answer.id, withdrawal_code: answer.withdrawal_code };
      $("[data-withdraw]").hidden = false;
      state.sending = null;
    } else if (outcome.refused) {
      message("done", S("failed", { error: outcome.refused }));
      state.sending = null;
    } else {
      message("done", S(outcome.offline || navigator.onLine === false ? "queued" : "queued_busy"));
      state.sending.waited = true;
    }
    return waited;
  }

  /** Hand the queued reports over, oldest first; stop at the first that must wait. */
  function flushQueue() {
    clearTimeout(retryTimer);
    retryTimer = null;
    showOutbox();
    var queue = load(QUEUE);
    if (flushing || !queue.length) return;
    var entry = queue[0];
    if (!entry.key) {  // saved by an older version of the page open in another tab
      entry.key = newKey();
      save(QUEUE, queue);
    }
    if (navigator.onLine === false) {  // the online event starts again
      queue.forEach(function (e) { tell(e, { kept: 0, offline: true }); });
      return;
    }
    flushing = true;
    post(entry).then(function (outcome) {
      flushing = false;
      if (outcome.kept !== undefined) {
        load(QUEUE).forEach(function (e) { tell(e, outcome); });
        retryLater(outcome.kept);
        showOutbox();
        return;
      }
      failures = 0;
      save(QUEUE, load(QUEUE).filter(function (e) { return e.key !== entry.key; }));
      if (outcome.refused) {
        var refused = load(REFUSED);
        refused.push({ category: entry.category, error: outcome.refused });
        save(REFUSED, refused);
      }
      // A report that waited (here, or from before the sheet was opened) is said sent on the status line too.
      var waited = tell(entry, outcome);
      if (outcome.stored) {
        if (waited) M.notice(S("queued_sent"));
        M.refresh();
      }
      flushQueue();
    });
  }

  function send() {
    var entry = Object.assign({ key: newKey() }, body());
    // A new report: the refusals of earlier ones have been seen.
    drop(REFUSED);
    var queue = load(QUEUE);
    queue.push(entry);
    save(QUEUE, queue);
    state.sending = { key: entry.key };
    message("done", S("sending"));
    step("done");
    failures = 0;  // the peer is here and waiting: try now
    flushQueue();
  }

  function withdraw(id, code) {
    return fetch(cfg.urls.reports + "/" + encodeURIComponent(id), {
      method: "DELETE", headers: { "X-Withdrawal-Code": code, "X-CSRF-Token": csrf() }, credentials: "same-origin", cache: "no-store"
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
    [MINE, F.PUBLISHED_KEY, REFUSED].forEach(drop);
    listMine();
    showOutbox();
  });
  document.getElementById("outbox-dismiss").addEventListener("click", function () {
    drop(REFUSED);
    showOutbox();
    document.getElementById("report-open").focus();
  });
  document.getElementById("outbox-retry").addEventListener("click", function () { failures = 0; flushQueue(); });
  window.addEventListener("online", function () { failures = 0; flushQueue(); });
  // Timers wait longer in a hidden tab: a try that came due meanwhile is made when it shows again.
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && retryTimer && Date.now() >= retryAt) flushQueue();
  });
  migrate();
  listMine();
  flushQueue();
})();
