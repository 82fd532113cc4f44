// The segment builder's live count: after each change of the form, the count panel alone is
// asked again (same criteria, same CSRF token as the form) and swapped in. The form still works
// without this script: its "Compter" button posts the whole page.
(function () {
  "use strict";
  var form = document.getElementById("segment-form");
  var panel = document.getElementById("count-panel");
  var status = document.getElementById("count-status");
  if (!form || !panel || !window.fetch) return;

  var WAIT_MS = 250; // one count for a burst of clicks: each count is a quote of the day's budget
  var timer = null;
  var asked = 0; // the latest request wins; older answers are dropped
  var inFlight = null;

  function updating(on) {
    panel.classList.toggle("is-updating", on);
    panel.setAttribute("aria-busy", on ? "true" : "false");
    status.textContent = on ? "Mise à jour du comptage…" : "";
  }

  function count() {
    var mine = ++asked;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    updating(true);
    fetch(form.dataset.countUrl, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
      signal: inFlight.signal,
      headers: { "Accept": "text/html" }
    }).then(function (response) {
      if (response.redirected) { // the session ended: back to the sign-in form
        window.location.assign(response.url);
        return null;
      }
      if (response.ok || response.status === 422) return response.text();
      throw new Error("HTTP " + response.status);
    }).then(function (html) {
      if (html === null || mine !== asked) return;
      panel.innerHTML = html; // rendered by the server, every value escaped
      updating(false);
    }).catch(function (error) {
      if (error.name === "AbortError" || mine !== asked) return;
      updating(false);
      status.textContent = "Le comptage n'a pas pu être mis à jour : cliquez sur « Compter ».";
    });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(count, WAIT_MS);
  }

  form.addEventListener("change", later);
  form.addEventListener("input", function (event) {
    if (event.target.type === "number") later();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearTimeout(timer);
    count();
  });
})();
