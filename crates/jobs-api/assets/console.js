// The console's own script: times in the browser's zone and the CSRF token on htmx requests.
// Every page works without it; it only makes them livelier.
(function () {
  "use strict";

  var pad = function (n) { return String(n).padStart(2, "0"); };

  // `<time datetime="…">` is rendered in UTC; show it in the browser's zone, with UTC on hover.
  function localTimes(root) {
    var nodes = (root || document).querySelectorAll("time[datetime]:not([data-local])");
    nodes.forEach(function (node) {
      var at = new Date(node.getAttribute("datetime"));
      if (isNaN(at.getTime())) { return; }
      var text = at.getFullYear() + "-" + pad(at.getMonth() + 1) + "-" + pad(at.getDate()) + " " +
        pad(at.getHours()) + ":" + pad(at.getMinutes()) + ":" + pad(at.getSeconds());
      if (node.dataset.style === "time") {
        text = pad(at.getHours()) + ":" + pad(at.getMinutes()) + ":" + pad(at.getSeconds());
      }
      node.title = node.textContent.trim() + " (UTC)";
      node.textContent = text;
      node.setAttribute("data-local", "");
    });
  }

  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });

  if (window.htmx) {
    window.htmx.onLoad(function (element) { localTimes(element); });
    document.addEventListener("htmx:configRequest", function (event) {
      var meta = document.querySelector('meta[name="csrf-token"]');
      if (meta) { event.detail.headers["X-CSRF-Token"] = meta.content; }
    });
  }
})();
