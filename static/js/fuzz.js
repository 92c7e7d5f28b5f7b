/* mapsvc: planar Laplace fuzzing on the device, the same mechanism as mapsvc/core/fuzz.py.
 * See shared/design/privacy.md §1. The true point never leaves this file's callers' phone:
 * only the fuzzed, rounded point is sent. */
(function (root) {
  "use strict";
  var E = Math.E;
  var EARTH_RADIUS_M = 6371008.8;
  // The fuzzed points this phone has published, per category: {"raid": [{lat, lon}, ...]}.
  var PUBLISHED_KEY = "mapsvc.published";
  var PUBLISHED_CAP = 200;

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

  function readPublished() {
    try {
      var kept = JSON.parse(root.localStorage.getItem(PUBLISHED_KEY) || "{}");
      return kept && typeof kept === "object" && !Array.isArray(kept) ? kept : {};
    } catch (e) { return {}; }
  }

  /** The point to publish for a true point (privacy.md section 7, the predictive mechanism).
   *
   * If a point this phone already published for the category lies within the category's reuse
   * distance theta of the true point, that point is published again: the first such point in the
   * list (the oldest), not the nearest, since the nearest would tell which of them the true point
   * is closest to. Otherwise fresh planar Laplace noise is drawn and the new point joins the list.
   * The list holds only fuzzed, rounded points per category: no true place, no cell, no time, and
   * no expiry by time (fresh draws would then average back towards the truth). It keeps at most
   * PUBLISHED_CAP points a category, dropping the oldest. A point is kept as soon as it is drawn,
   * so cancelling and starting again cannot draw until the point looks "better".
   */
  function publishedPoint(lat, lon, category, policy) {
    var epsilon = policy.epsilon_per_m, theta = policy.reuse_distance_m || 4 / epsilon;
    var kept = readPublished(), mine = Array.isArray(kept[category]) ? kept[category] : [];
    for (var i = 0; i < mine.length; i++) {
      if (distanceM(lat, lon, mine[i].lat, mine[i].lon) <= theta) return { lat: mine[i].lat, lon: mine[i].lon };
    }
    var move = drawDisplacement(epsilon), to = destination(lat, lon, move.bearing, move.distance);
    var point = { lat: round4(to.lat), lon: round4(to.lon) };
    kept[category] = mine.concat([point]).slice(-PUBLISHED_CAP);
    try { root.localStorage.setItem(PUBLISHED_KEY, JSON.stringify(kept)); } catch (e) { /* private mode */ }
    return { lat: point.lat, lon: point.lon };
  }

  // Earlier versions kept the true point's ~66 m grid cell with a time: such a key is deleted.
  try { root.localStorage.removeItem("mapsvc.sticky"); } catch (e) { /* private mode */ }

  root.mapsvcFuzz = {
    lambertWm1: lambertWm1, inverseRadialCdf: inverseRadialCdf, uniform: uniform,
    drawDisplacement: drawDisplacement, destination: destination, distanceM: distanceM,
    round4: round4, publishedPoint: publishedPoint, PUBLISHED_KEY: PUBLISHED_KEY, PUBLISHED_CAP: PUBLISHED_CAP
  };
})(window);
