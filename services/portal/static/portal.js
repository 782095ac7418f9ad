// The portal's own script (progressive enhancement only: every form works without it).
// 1. The receipt's print button. 2. Live updates: pages marked data-live reload their figures when the
//    stream says something changed (server-sent events carry only an event type, never data).
(function () {
  "use strict";

  function setupPrint() {
    document.querySelectorAll("button.print").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () { window.print(); });
    });
  }

  function refresh(region) {
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("[data-live]");
        if (fresh) { region.innerHTML = fresh.innerHTML; }
      })
      .catch(function () { /* the next fact tries again */ });
  }

  function setupLive() {
    var region = document.querySelector("[data-live]");
    if (!region || !window.EventSource) { return; }
    var status = document.querySelector(".live-status");
    var pending = null;
    var source = new EventSource("/live");
    source.addEventListener("open", function () { if (status) { status.hidden = false; } });
    source.addEventListener("fact", function () {
      if (pending) { return; }
      // a burst of facts (a deadline evening) becomes one refresh per second at most
      pending = window.setTimeout(function () { pending = null; refresh(region); }, 1000);
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
