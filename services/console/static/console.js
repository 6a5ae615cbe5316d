// Vigil console: new alerts pushed live (server-sent events) and self-refreshing sections.
// Loaded from this server only; the Content-Security-Policy forbids inline scripts.
"use strict";

(function () {
  function liveAlerts() {
    var status = document.getElementById("live-status");
    var list = document.getElementById("stories");
    if (!status || !list || !window.EventSource) {
      return;
    }
    var arrived = 0;
    var source = new EventSource(status.dataset.liveUrl);
    source.addEventListener("open", function () {
      status.classList.remove("offline");
    });
    source.addEventListener("error", function () {
      status.classList.add("offline");
      status.textContent = "Live updates interrupted: reconnecting…";
    });
    source.addEventListener("alert", function (event) {
      var holder = document.createElement("template");
      holder.innerHTML = event.data.trim();
      var story = holder.content.firstElementChild;
      if (!story || document.getElementById(story.id)) {
        return;
      }
      var empty = document.getElementById("no-stories");
      if (empty) {
        empty.remove();
      }
      list.insertBefore(story, list.firstElementChild);
      arrived += 1;
      status.classList.remove("offline");
      status.textContent = arrived === 1 ? "1 new alert arrived." : arrived + " new alerts arrived.";
    });
  }

  function refreshing() {
    var sections = document.querySelectorAll("[data-refresh]");
    Array.prototype.forEach.call(sections, function (section) {
      var shown = section.innerHTML;
      window.setInterval(function () {
        if (document.visibilityState !== "visible" || section.contains(document.activeElement)) {
          return;
        }
        window.fetch(section.dataset.refresh, {
          credentials: "same-origin",
          headers: { "X-Vigil-Fragment": "1" }
        }).then(function (response) {
          if (response.status === 401) {
            window.location.reload();  // the session ended: back to the login page
            return null;
          }
          return response.ok ? response.text() : null;
        }).then(function (html) {
          if (html !== null && html !== shown) {
            shown = html;
            section.innerHTML = html;
          }
        }).catch(function () {
          // offline for a moment: the next tick tries again
        });
      }, 2000);
    });
  }

  liveAlerts();
  refreshing();
}());
