/* mapsvc: planar Laplace fuzzing on the device, the same mechanism as mapsvc/core/fuzz.py.
 * See shared/design/privacy.md §1. The true point never leaves this file's callers' phone:
 * only the fuzzed, rounded point is sent. */
(function (root) {
  "use strict";
  var E = Math.E;
  var EARTH_RADIUS_M = 6371008.8;
  var STICKY_KEY = "mapsvc.sticky";
  var STICKY_DAYS = 30;
  // A ~66 m grid cell, standing in for H3 resolution 10 (average edge about 66 m): h3-js weighs
  // hundreds of KB, too much for 2G. Rows are 66 m of latitude; columns are 66 m of longitude
  // at the row's middle latitude. The key is stable for a place, which is all stickiness needs.
  var CELL_M = 66;
  var M_PER_DEG = 111320;

  /** Lambert W, branch -1, for x in [-1/e, 0): Halley iteration from a series or asymptotic guess. */
  function lambertWm1(x) {
    if (!(x >= -1 / E && x < 0)) return NaN;
    var w;
    var q = 1 + E * x;
    if (q <= 0) return -1;
    if (x < -0.25) {
      var p = -Math.sqrt(2 * q); // series about the branch point
      w = -1 + p * (1 + p * (-1 / 3 + p * (11 / 72 + p * (-43 / 540 + p * (769 / 17280 + p * (-221 / 8505))))));
      // So close to the branch point the series is exact to double precision, and Halley's
      // step would only divide rounding noise by a vanishing derivative.
      if (q < 1e-4) return w;
    } else {
      var l1 = Math.log(-x), l2 = Math.log(-l1);
      w = l1 - l2 + l2 / l1;
    }
    for (var i = 0; i < 60; i++) {
      var ew = Math.exp(w), f = w * ew - x, wp1 = w + 1;
      if (f === 0 || wp1 === 0) break;
      var step = f / (ew * wp1 - ((w + 2) * f) / (2 * wp1));
      w -= step;
      if (Math.abs(step) <= 1e-15 * Math.abs(w)) break;
    }
    return w;
  }

  /** Distance in metres at which the radial CDF 1 - (1 + eps r) e^(-eps r) equals p. */
  function inverseRadialCdf(p, epsilon) {
    var w = lambertWm1((p - 1) / E);
    return Math.max(-(w + 1) / epsilon, 0);
  }

  /** A float uniform on [0, 1) with 53 random bits from the cryptographic source. */
  function uniform() {
    var u = new Uint32Array(2);
    root.crypto.getRandomValues(u);
    return ((u[0] >>> 5) * 67108864 + (u[1] >>> 6)) / 9007199254740992;
  }

  /** One displacement: bearing in degrees clockwise from north, distance in metres. */
  function drawDisplacement(epsilon) {
    return { bearing: uniform() * 360, distance: inverseRadialCdf(uniform(), epsilon) };
  }

  /** The point reached from (lat, lon) along a bearing for a distance, on the sphere. */
  function destination(lat, lon, bearingDeg, distanceM) {
    var rad = Math.PI / 180, d = distanceM / EARTH_RADIUS_M, th = bearingDeg * rad;
    var p1 = lat * rad, l1 = lon * rad;
    var p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(th));
    var l2 = l1 + Math.atan2(Math.sin(th) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
    return { lat: p2 / rad, lon: ((((l2 / rad) + 540) % 360) - 180) };
  }

  /** Great-circle distance in metres. */
  function distanceM(lat1, lon1, lat2, lon2) {
    var rad = Math.PI / 180;
    var a = Math.pow(Math.sin(((lat2 - lat1) * rad) / 2), 2) +
      Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.pow(Math.sin(((lon2 - lon1) * rad) / 2), 2);
    return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
  }

  function round4(v) { return Math.round(v * 1e4) / 1e4; }

  function cellKey(lat, lon) {
    var row = Math.floor((lat * M_PER_DEG) / CELL_M);
    var mid = (((row + 0.5) * CELL_M) / M_PER_DEG) * (Math.PI / 180);
    var col = Math.floor((lon * M_PER_DEG * Math.cos(mid)) / CELL_M);
    return row + ":" + col;
  }

  function readSticky(now) {
    var kept = {};
    try { kept = JSON.parse(root.localStorage.getItem(STICKY_KEY) || "{}"); } catch (e) { kept = {}; }
    var fresh = {};
    Object.keys(kept).forEach(function (k) {
      if (now - kept[k].t < STICKY_DAYS * 86400000) fresh[k] = kept[k];
    });
    return fresh;
  }

  /** The fuzzed, rounded point for a true point: reused for 30 days from the same ~66 m cell. */
  function fuzzSticky(lat, lon, epsilon) {
    var now = Date.now(), kept = readSticky(now);
    var key = cellKey(lat, lon) + "|" + epsilon.toPrecision(6);
    if (!kept[key]) {
      var move = drawDisplacement(epsilon), to = destination(lat, lon, move.bearing, move.distance);
      kept[key] = { lat: round4(to.lat), lon: round4(to.lon), t: now };
    }
    try { root.localStorage.setItem(STICKY_KEY, JSON.stringify(kept)); } catch (e) { /* private mode */ }
    return { lat: kept[key].lat, lon: kept[key].lon };
  }

  root.mapsvcFuzz = {
    lambertWm1: lambertWm1, inverseRadialCdf: inverseRadialCdf, uniform: uniform,
    drawDisplacement: drawDisplacement, destination: destination, distanceM: distanceM,
    cellKey: cellKey, fuzzSticky: fuzzSticky, round4: round4, STICKY_KEY: STICKY_KEY
  };
})(window);
