// The segment builder's live parts. After each change of the form, the parts that follow it
// are asked again (same criteria, same CSRF token as the form) and swapped in: the count panel,
// the map's colours, the charts and the fields' errors. Clicking a department of the map ticks
// its box in the list; the commune searches list what matches as one types. The form still
// works without this script: its count and search buttons post the whole page.
// The script carries no language: its sentences are the page's, in the reader's language
// (data-updating and data-failed on the status line, data-search-failed on the form).
(function () {
  "use strict";
  var form = document.getElementById("segment-form");
  var panel = document.getElementById("count-panel");
  var status = document.getElementById("count-status");
  if (!form || !panel || !window.fetch) return;

  // One count for a burst of clicks: each count is a quote of the organisation's daily budget.
  var WAIT_MS = 250;
  var SEARCH_MS = 200; // a commune search reads reference data only: it spends no quote
  var SEARCH_FIELDS = ["commune_search", "radius_search", "search"];
  var timer = null;
  var asked = 0; // the latest request wins; older answers are dropped
  var inFlight = null;

  function criteria() {
    var data = new FormData(form);
    SEARCH_FIELDS.forEach(function (name) { data.delete(name); });
    return new URLSearchParams(data);
  }
  // The criteria of the count on screen: the same criteria again spend no quote.
  var counted = criteria().toString();

  function updating(on) {
    panel.classList.toggle("is-updating", on);
    panel.setAttribute("aria-busy", on ? "true" : "false");
    status.textContent = on ? status.dataset.updating || "" : "";
  }

  function fragment(parsed, name) {
    return parsed.content.querySelector('template[data-fragment="' + name + '"]');
  }

  function showErrors(found) {
    var said = {};
    if (found) {
      [].forEach.call(found.content.querySelectorAll("[data-for]"), function (p) {
        said[p.getAttribute("data-for")] = p.textContent;
      });
    }
    [].forEach.call(form.querySelectorAll("[data-error-for]"), function (slot) {
      var text = said[slot.getAttribute("data-error-for")] || "";
      slot.textContent = text;
      slot.hidden = !text;
    });
    [].forEach.call(form.querySelectorAll(".field"), function (field) {
      var wrong = [].some.call(field.querySelectorAll("[data-error-for]"), function (s) {
        return !s.hidden;
      });
      field.classList.toggle("field--error", wrong);
    });
    var summary = document.querySelector(".error-summary");
    if (summary && Object.keys(said).length === 0) summary.hidden = true;
  }

  // A department may be drawn twice (Paris and its inner ring: small on the map, larger in
  // their own frame); the larger one is the control, the other follows it.
  function copies(code) {
    return map ? [].slice.call(map.querySelectorAll('[data-code="' + code + '"]')) : [];
  }

  function mark(code, checked) {
    copies(code).forEach(function (shape) {
      var name = shape.hasAttribute("role") ? "aria-checked" : "data-checked";
      shape.setAttribute(name, checked ? "true" : "false");
    });
  }

  function showCells(found) {
    if (!found) return;
    [].forEach.call(found.content.querySelectorAll("li[data-code]"), function (li) {
      var code = li.getAttribute("data-code");
      copies(code).forEach(function (shape) {
        [].slice.call(shape.classList).forEach(function (name) {
          if (name.indexOf("dept--") === 0) shape.classList.remove(name);
        });
        shape.classList.add(li.getAttribute("data-css"));
        if (shape.hasAttribute("role")) shape.setAttribute("aria-label", li.getAttribute("data-label"));
      });
      mark(code, li.getAttribute("data-checked") === "true");
    });
    showInfo();
  }

  function swap(id, found) {
    var target = document.getElementById(id);
    if (target && found) target.innerHTML = found.innerHTML; // rendered by the server, escaped
  }

  function show(html) {
    var parsed = document.createElement("template");
    parsed.innerHTML = html;
    swap("count-panel", fragment(parsed, "count-panel"));
    swap("map-legend", fragment(parsed, "map-legend"));
    swap("breakdowns", fragment(parsed, "breakdowns"));
    showCells(fragment(parsed, "map-cells"));
    showErrors(fragment(parsed, "field-errors"));
  }

  function count(again) {
    var body = criteria();
    if (!again && body.toString() === counted) return;
    counted = body.toString();
    var mine = ++asked;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    updating(true);
    fetch(form.dataset.countUrl, {
      method: "POST",
      body: body,
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
      show(html);
      updating(false);
    }).catch(function (error) {
      if (error.name === "AbortError" || mine !== asked) return;
      counted = null; // not shown: the same criteria may be asked again
      updating(false);
      status.textContent = status.dataset.failed || "";
    });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(count, WAIT_MS);
  }

  // The map: a department is a checkbox of its own, tied to its box in the list.
  var map = document.getElementById("segment-map");
  var shapes = map ? [].slice.call(map.querySelectorAll('[role="checkbox"]')) : [];
  var info = document.getElementById("map-info");
  var described = null; // the department under the pointer or the focus

  function boxOf(code) {
    return form.querySelector('input[name="departments"][value="' + code + '"]');
  }

  function toggle(shape) {
    var box = boxOf(shape.getAttribute("data-code"));
    if (!box) return;
    box.checked = !box.checked;
    mark(shape.getAttribute("data-code"), box.checked);
    later();
  }

  function focusShape(shape) {
    if (!shape.hasAttribute("role")) {
      shape = map.querySelector('[role="checkbox"][data-code="' + shape.getAttribute("data-code") + '"]');
    }
    shapes.forEach(function (s) { s.setAttribute("tabindex", s === shape ? "0" : "-1"); });
    shape.focus();
  }

  function describe(event) {
    var shape = event.target.closest && event.target.closest("[data-code]");
    described = shape ? shape.getAttribute("data-code") : null;
    showInfo();
  }

  function showInfo() {
    var named = described && map.querySelector('[role="checkbox"][data-code="' + described + '"]');
    if (info) info.textContent = named ? named.getAttribute("aria-label") : "";
  }

  if (map) {
    map.addEventListener("click", function (event) {
      var shape = event.target.closest("[data-code]");
      if (!shape) return;
      toggle(shape);
      focusShape(shape);
    });
    map.addEventListener("keydown", function (event) {
      var shape = event.target.closest("[data-code]");
      if (!shape) return;
      var at = shapes.indexOf(shape);
      var step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        toggle(shape);
      } else if (step) {
        event.preventDefault();
        focusShape(shapes[(at + step + shapes.length) % shapes.length]);
      } else if (event.key === "Home" || event.key === "End") {
        event.preventDefault();
        focusShape(shapes[event.key === "Home" ? 0 : shapes.length - 1]);
      }
    });
    map.addEventListener("mouseover", describe);
    map.addEventListener("focusin", describe);
  }

  // Commune searches: what matches as one types; a click ticks it (or makes it the centre).
  function pick(mode, insee, label) {
    var holder = document.getElementById(mode === "radius" ? "radius_commune" : "communes-picked");
    var name = mode === "radius" ? "radius_commune" : "communes";
    var input = holder.querySelector('input[name="' + name + '"][value="' + insee + '"]');
    if (mode === "radius") {
      [].forEach.call(holder.querySelectorAll(".chip"), function (c) { c.remove(); });
      input = null;
    }
    if (!input) {
      var chip = document.createElement("label");
      chip.className = "choice chip";
      input = document.createElement("input");
      input.type = mode === "radius" ? "radio" : "checkbox";
      input.name = name;
      input.value = insee;
      var text = document.createElement("span");
      text.textContent = label;
      chip.appendChild(input);
      chip.appendChild(document.createTextNode(" "));
      chip.appendChild(text);
      holder.appendChild(chip);
    }
    input.checked = true;
    var none = holder.querySelector(".picked__none");
    if (none) none.remove();
    later();
  }

  function searchBox(input) {
    var results = document.getElementById(input.id + "-results");
    var mode = input.getAttribute("data-search");
    var wait = null;
    var latest = 0;
    function lookup() {
      var mine = ++latest;
      var url = form.dataset.communesUrl + "?mode=" + mode + "&q=" + encodeURIComponent(input.value);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error("HTTP " + r.status)); })
        .then(function (html) { if (mine === latest) results.innerHTML = html; })
        .catch(function () { results.textContent = form.dataset.searchFailed || ""; });
    }
    input.addEventListener("input", function () {
      clearTimeout(wait);
      wait = setTimeout(lookup, SEARCH_MS);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        clearTimeout(wait);
        lookup();
      } else if (event.key === "ArrowDown") {
        var first = results.querySelector("button");
        if (first) { event.preventDefault(); first.focus(); }
      }
    });
    results.addEventListener("click", function (event) {
      var button = event.target.closest(".search__pick");
      if (!button) return;
      pick(mode, button.getAttribute("data-insee"), button.getAttribute("data-label"));
      input.value = "";
      results.innerHTML = "";
      input.focus();
    });
    return lookup;
  }

  // On a phone the count stays in view while one ticks: the charts wait, folded, under it.
  var charts = document.querySelector(".breakdowns");
  if (charts && window.matchMedia && window.matchMedia("(max-width: 52rem)").matches) {
    charts.open = false;
  }

  var lookups = {};
  [].forEach.call(form.querySelectorAll("[data-search]"), function (input) {
    lookups[input.id] = searchBox(input);
  });

  form.addEventListener("change", function (event) {
    var target = event.target;
    if (SEARCH_FIELDS.indexOf(target.name) >= 0) return;
    if (target.name === "departments") mark(target.value, target.checked);
    later();
  });
  form.addEventListener("input", function (event) {
    var target = event.target;
    if (target.type === "number" || target.hasAttribute("data-live-input")) later();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var by = event.submitter;
    if (by && by.name === "search" && lookups[by.value]) {
      lookups[by.value]();
      return;
    }
    clearTimeout(timer);
    count(true);
  });

  // The page is sent before its count (counting would hold its first paint): asked at once.
  if (panel.querySelector(".count--pending")) count(true);
})();
