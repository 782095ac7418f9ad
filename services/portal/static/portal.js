// The portal's own script (progressive enhancement only: every form works without it).
// 1. The receipt's print button. 2. Live updates: pages marked data-live reload their figures when the
//    stream says something changed (server-sent events carry only an event type, never data), paced by how
//    fast and how willingly the services answer.
(function () {
  "use strict";

  function setupPrint() {
    document.querySelectorAll("button.print").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () { window.print(); });
    });
  }

  // The page fetched again and its live region replaced: resolves to how long to wait before the next one,
  // in ms. One second at least, and four times what this one took (a slow answer means a busy service: ask
  // less often); after a refusal or no answer, the service's Retry-After or twice the last wait (at most a
  // minute), and then without waiting for another fact, since the figures shown are stale.
  function refresh(region, last) {
    var started = Date.now();
    return fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (!r.ok) {
          var after = parseInt(r.headers.get("Retry-After") || "", 10);
          return { failed: after > 0 ? after * 1000 : Math.min(60000, 2 * last) };
        }
        return r.text().then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.querySelector("[data-live]");
          if (fresh) { region.innerHTML = fresh.innerHTML; }
          return { wait: Math.max(1000, 4 * (Date.now() - started)) };
        });
      })
      .catch(function () { return { failed: Math.min(60000, 2 * last) }; });
  }

  function setupLive() {
    var region = document.querySelector("[data-live]");
    if (!region || !window.EventSource) { return; }
    var status = document.querySelector(".live-status");
    var live = status ? status.textContent : "";
    var wait = 1000;       // before the next refresh
    var timer = null;      // a refresh is planned
    var running = false;   // a refresh is under way: never two at once
    var missed = false;    // a fact came while one was under way or planned
    function plan(ms) { timer = window.setTimeout(run, ms); }
    function run() {
      timer = null; running = true; missed = false;
      refresh(region, wait).then(function (next) {
        running = false;
        if (next.failed) {
          wait = next.failed;
          if (status) {
            status.textContent = status.dataset.busy.replace("{s}", String(Math.round(wait / 1000)));
            status.classList.add("busy");
          }
          plan(wait);
          return;
        }
        wait = next.wait;
        if (status) { status.textContent = live; status.classList.remove("busy"); }
        if (missed) { plan(wait); }
      });
    }
    var source = new EventSource("/live");
    source.addEventListener("open", function () { if (status) { status.hidden = false; } });
    source.addEventListener("fact", function () {
      if (running || timer) { missed = true; return; }
      // a burst of facts (a deadline evening) becomes one refresh per wait at most
      plan(wait);
    });
  }

  // 3. Uploads with a progress bar: the same form, sent by XMLHttpRequest; the answer's page replaces this one.
  function setupUploads() {
    document.querySelectorAll("form[data-upload]").forEach(function (form) {
      var bar = form.querySelector("progress");
      form.addEventListener("submit", function (e) {
        if (!window.FormData || !bar) { return; }
        e.preventDefault();
        var xhr = new XMLHttpRequest();
        bar.hidden = false;
        xhr.upload.addEventListener("progress", function (p) {
          if (p.lengthComputable) { bar.value = Math.round(100 * p.loaded / p.total); }
        });
        xhr.addEventListener("load", function () {
          bar.value = 100;
          if (xhr.responseURL) { window.history.replaceState(null, "", xhr.responseURL); }
          document.open(); document.write(xhr.responseText); document.close();
        });
        xhr.addEventListener("error", function () { form.submit(); });
        xhr.open("POST", form.action);
        xhr.send(new FormData(form));
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { setupPrint(); setupLive(); setupUploads(); });
})();
