// The order form's live panel. As the marketer types, the form is sent to the server (same
// CSRF token as the form) and its answer, rendered and escaped there, replaces the composer
// panel: counts, encoding, segments, the characters that force UCS-2, the phone previews and
// the waves of the send time. Every rule is the server's; this script only asks and shows.
// Its one sentence (the preview failed) is the page's, in the reader's language: data-failed.
(function () {
  "use strict";
  var form = document.getElementById("order-form");
  var panel = document.getElementById("composer");
  var status = document.getElementById("composer-status");
  var WAIT_MS = 200;
  var timer = null;
  var asked = 0; // the latest request wins
  var inFlight = null;

  // A confirmation is sent once, whatever the clicks.
  var confirmForm = document.getElementById("confirm-form");
  if (confirmForm) {
    confirmForm.addEventListener("submit", function () {
      var button = confirmForm.querySelector("button[type=submit]");
      window.setTimeout(function () { button.disabled = true; }, 0);
    });
  }
  if (!form || !panel || !window.fetch) return;

  function refresh() {
    var mine = ++asked;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    panel.setAttribute("aria-busy", "true");
    fetch(form.dataset.liveUrl, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
      signal: inFlight.signal,
      headers: { "Accept": "text/html" }
    }).then(function (response) {
      if (response.redirected) { window.location.assign(response.url); return null; }
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    }).then(function (html) {
      if (html === null || mine !== asked) return;
      panel.innerHTML = html; // rendered by the server, escaped
      panel.setAttribute("aria-busy", "false");
      status.textContent = "";
    }).catch(function (error) {
      if (error.name === "AbortError" || mine !== asked) return;
      panel.setAttribute("aria-busy", "false");
      status.textContent = status.dataset.failed || "";
    });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, WAIT_MS);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);

  // The civility variable, inserted where the cursor is.
  var civility = document.getElementById("add-civility");
  var message = document.getElementById("message");
  if (civility && message) {
    civility.addEventListener("click", function () {
      var text = civility.dataset.insert;
      var start = message.selectionStart, end = message.selectionEnd;
      message.setRangeText(text, start, end, "end");
      message.focus();
      later();
    });
  }
})();
