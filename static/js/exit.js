/* mapsvc quick exit: the Exit button and the Escape key replace this page with a neutral one.
 * location.replace keeps this page out of the back button's history. Unless the organisation
 * turns it off (QUICK_EXIT_WIPES, the link's data-wipe), it first wipes what this phone keeps:
 * mapsvc's localStorage keys (receipts, the offline queue, published points) and sessionStorage,
 * and asks the server (a beacon, which outlives the page) to delete the sign-in form's HttpOnly
 * cookie that remembers this browser, which no script can reach. */
(function () {
  "use strict";
  var link = document.getElementById("quick-exit");
  if (!link) return;
  function wipe() {
    try {
      var keys = [];
      for (var i = 0; i < window.localStorage.length; i++) keys.push(window.localStorage.key(i));
      keys.forEach(function (k) { if (k && k.indexOf("mapsvc.") === 0) window.localStorage.removeItem(k); });
    } catch (e) { /* storage not available: nothing kept there */ }
    try { window.sessionStorage.clear(); } catch (e) { /* nothing kept there */ }
    try {
      var form = new FormData();
      form.append("csrf_token", (document.querySelector("meta[name=csrf-token]") || {}).content || "");
      navigator.sendBeacon(link.getAttribute("data-forget"), form);
    } catch (e) { /* no beacons: clearing the site's data in the browser removes the cookie */ }
  }
  function leave(event) {
    if (event) event.preventDefault();
    document.documentElement.style.visibility = "hidden";
    document.title = "";
    if (link.getAttribute("data-wipe") !== "false") wipe();
    window.location.replace(link.getAttribute("data-exit"));
  }
  link.addEventListener("click", leave);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" || event.key === "Esc") leave(event);
  });
})();
