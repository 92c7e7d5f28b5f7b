/* mapsvc quick exit: the Exit button and the Escape key replace this page with a neutral one.
 * location.replace keeps this page out of the back button's history. */
(function () {
  "use strict";
  var link = document.getElementById("quick-exit");
  if (!link) return;
  function leave(event) {
    if (event) event.preventDefault();
    document.documentElement.style.visibility = "hidden";
    document.title = "";
    try { window.sessionStorage.clear(); } catch (e) { /* nothing kept there */ }
    window.location.replace(link.getAttribute("data-exit"));
  }
  link.addEventListener("click", leave);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" || event.key === "Esc") leave(event);
  });
})();
