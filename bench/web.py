"""The web app in a real Chromium (Debian's, driven by Playwright) on a real `rental serve` over a
10M base: first paint of the segment builder, and the live count's round trip after a click.

The builder is sent before its count (web/segment.py): its first paint, and apart from it when
the whole base's count shows (segment.js asks it as soon as the page is parsed).

The click is a tick of the "Femme" box, alternately on and off (each state gives another count,
so the text changes every time); the engine answers it from its cube of sex, age and places. A
second series ticks the "Voyages" interest the same way: a count the engine answers by scanning
the rows. It is timed in the page itself (performance.now(), no Playwright
round trip in the figure): from the click to the live count's text changing in the DOM, then to
the next frame. segment.js waits WAIT_MS (250 ms) after the last change before it sends, so that
a burst of clicks spends one quote: the figure with the wait, and without it (from the request's
start in Resource Timing to the text changing), which is what the <= 50 ms target means.

Baselines in the same run and on the same two criteria: the page's own count endpoint through
httpx with the session's cookie (the server's part alone), and `POST /v1/quotes` (the API), with
its default breakdowns and with the builder's (region, department, age band, sex)."""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import statistics
import subprocess
import time
from typing import Any

import httpx2 as httpx
from playwright.sync_api import Page, sync_playwright

from bench.common import RENTAL, cli, ensure_base, env_for, p50_ms
from bench.http import api_key, serving
from web.segment_views import BREAKDOWNS

CHROMIUM = "/usr/bin/chromium"
LOADS = 25
CLICKS = 40
WAIT_MS = 250  # segment.js's WAIT_MS
COUNT_PATH = "/app/segment/count"
CRITERIA: tuple[dict[str, Any], ...] = ({}, {"sex": ["F"]})

PAINT = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = Object.fromEntries(
    performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
  return {first_paint: paint['first-paint'], first_contentful_paint:
    paint['first-contentful-paint'], response_end: nav.responseEnd,
    dom_content_loaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd};
}"""

# The builder is sent before its count (segment.js asks it at once): when its number shows.
# Installed on each new document by Playwright, as a listener only (nothing observed while the
# page is parsed, so the paint marks are not disturbed); the count is asked by the deferred
# script, which runs before DOMContentLoaded, and answered after it.
COUNT_SHOWN = """document.addEventListener('DOMContentLoaded', () => {
  const panel = document.getElementById('count-panel');
  if (!panel) return;
  const shown = () => /^\\d/.test((panel.querySelector('[data-testid=live-count]') || {})
    .textContent || '');
  const seen = new MutationObserver(() => {
    if (!shown()) return;
    window.__countShown = performance.now();
    seen.disconnect();
  });
  if (shown()) window.__countShown = performance.now();
  else seen.observe(panel, {childList: true, subtree: true, characterData: true});
});"""

SHOWN = """(path) => new Promise(done => {
  const check = () => {
    if (window.__countShown === undefined) return setTimeout(check, 10);
    const req = performance.getEntriesByType('resource').filter(e => e.name.endsWith(path))[0];
    done({count_shown: window.__countShown, count_request_start: req.startTime,
          count_response_end: req.responseEnd});
  };
  check();
})"""

PAINTED = """() => new Promise(done => {
  const check = () => performance.getEntriesByType('paint').length >= 2 ? done() :
    setTimeout(check, 10);
  check();
})"""

# One click, timed in the page: to the live count's new text, then to the next frame; and the
# count request's own timing (Resource Timing), cleared before so that it is this click's.
CLICK = """([path, name, value]) => new Promise(resolve => {
  const panel = document.getElementById('count-panel');
  const text = () => (document.querySelector('[data-testid=live-count]') || {}).textContent;
  const before = text();
  performance.clearResourceTimings();
  const box = [...document.querySelectorAll(`input[name=${name}]`)].find(b => b.value === value);
  const t0 = performance.now();
  const seen = new MutationObserver(() => {
    if (text() === before) return;
    const shown = performance.now();
    seen.disconnect();
    requestAnimationFrame(() => setTimeout(() => {
      const req = performance.getEntriesByType('resource')
        .filter(e => e.name.endsWith(path)).pop();
      resolve({shown: shown - t0, next_frame: performance.now() - t0,
               request_start: req.startTime - t0, request: req.duration,
               from_request_start: shown - req.startTime});
    }, 0));
  });
  seen.observe(panel, {childList: true, subtree: true, characterData: true});
  box.click();
})"""


def pct(values: list[float], q: int) -> float:
    """The q-th percentile (nearest rank), in ms rounded to 0.1."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))], 1)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 1),
        "p95_ms": pct(values, 95),
        "max_ms": round(max(values), 1),
    }


def add_marketer(env: dict[str, str]) -> tuple[str, str]:
    """A client of the Bench organisation who signs in with a password: (email, password)."""
    email = f"bench-{int(time.time())}@bench.test"
    password = secrets.token_urlsafe(24)
    subprocess.run(
        [RENTAL, "accounts", "add-user", "--organisation", "Bench", "--email", email]
        + ["--password-stdin"],
        env=env,
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return email, password


def sign_in(page: Page, site: str, email: str, password: str) -> None:
    page.goto(site + "/")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(site + "/app/segment")


def first_paint(page: Page, site: str) -> dict[str, Any]:
    """LOADS loads of the builder (a reload by address, the browser's cache warm as for a
    marketer coming back), p50 of each mark; the first (cold) load apart. The page comes
    before its count: when the count's number shows too (from the navigation's start)."""
    loads = []
    for _ in range(LOADS + 1):
        page.goto(site + "/app/segment", wait_until="load")
        page.evaluate(PAINTED)  # wait_for_function would eval a string: the CSP refuses it
        loads.append(page.evaluate(PAINT) | page.evaluate(SHOWN, COUNT_PATH))
    warm = loads[1:]
    return {
        "loads": LOADS,
        "cold_first_load_ms": {k: round(v, 1) for k, v in loads[0].items()},
        **{k: summary([x[k] for x in warm]) for k in loads[0]},
    }


# What is ticked: "Femme" (sex, answered by the engine's cube of sex, age and places) and the
# "Voyages" interest (answered by scanning the rows: segmentation/cube.py says which counts the
# cube answers).
TICKED = {"cube": ("sex", "F"), "scan": ("interests", "travel")}


def clicks(page: Page, path: str) -> dict[str, Any]:
    """CLICKS ticks of one box (TICKED[path]), on and off; the first two are warm-up."""
    name, value = TICKED[path]
    runs = [page.evaluate(CLICK, [COUNT_PATH, name, value]) for _ in range(CLICKS + 2)][2:]
    return {
        "ticked": f"{name}={value}",
        "engine_path": path,
        "clicks": CLICKS,
        "debounce_ms": WAIT_MS,
        "click_to_text_with_debounce": summary([r["shown"] for r in runs]),
        "click_to_next_frame_with_debounce": summary([r["next_frame"] for r in runs]),
        "click_to_request_start": summary([r["request_start"] for r in runs]),
        "request_start_to_text": summary([r["from_request_start"] for r in runs]),
        "request_resource_timing": summary([r["request"] for r in runs]),
    }


def server_only(page: Page, site: str) -> float:
    """p50 of the page's count endpoint through httpx with the browser's session cookie, on the
    same two criteria alternately (the form as segment.js sends it)."""
    body = page.evaluate(
        "() => { const d = new FormData(document.getElementById('segment-form'));"
        " ['commune_search', 'radius_search', 'search', 'sex'].forEach(n => d.delete(n));"
        " return new URLSearchParams(d).toString(); }"
    )
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    bodies = itertools.cycle([body, body + "&sex=F"])
    with httpx.Client(base_url=site, cookies=cookies, timeout=60) as client:

        def post() -> None:
            r = client.post(
                COUNT_PATH,
                content=next(bodies),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "text/html",
                },
            )
            r.raise_for_status()
            assert "live-count" in r.text, r.text[:200]

        return p50_ms(post, repeat=40, warmup=4)


def api_quotes(client: httpx.Client, breakdowns: str | None = None) -> float:
    """p50 of `POST /v1/quotes` on the same two criteria alternately (with the API's default
    breakdowns, or the builder's)."""
    bodies = itertools.cycle(CRITERIA)
    params = {"breakdowns": breakdowns} if breakdowns else {}

    def post() -> None:
        client.post("/v1/quotes", json=next(bodies), params=params).raise_for_status()

    return p50_ms(post, repeat=40, warmup=4)


def run(rows: int) -> dict[str, Any]:
    ensure_base(rows)
    load_before = os.getloadavg()[0]  # the machine is shared: how busy it was, for the reader
    env = env_for(rows) | {"RENTAL_DAILY_QUOTE_BUDGET": "1000000"}
    key = api_key(env)
    email, password = add_marketer(env)
    browser_path = shutil.which("chromium") or CHROMIUM
    if not os.path.exists(browser_path):
        raise SystemExit("bench.web needs Debian's chromium: apt-get install chromium")
    with serving(env, key) as client, sync_playwright() as pw:
        site = str(client.base_url).rstrip("/")
        browser = pw.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        try:
            # A French marketer's browser: the pages answer in the language it asks for.
            page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="fr-FR")
            page.add_init_script(COUNT_SHOWN)
            sign_in(page, site, email, password)
            paint = first_paint(page, site)
            click = clicks(page, "cube")
            scanned = clicks(page, "scan")
            server_p50 = server_only(page, site)
        finally:
            browser.close()
        api_p50 = api_quotes(client)
        api_same_p50 = api_quotes(client, BREAKDOWNS)
    through = click["request_start_to_text"]["p50_ms"]
    return {
        "rows": rows,
        "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "first_paint": paint,
        "live_count": click,
        "live_count_scan_path": scanned,
        "baseline_web_count_endpoint_httpx_p50_ms": server_p50,
        "baseline_api_post_quotes_p50_ms": api_p50,
        "baseline_api_post_quotes_builder_breakdowns_p50_ms": api_same_p50,
        "builder_breakdowns": BREAKDOWNS,
        "browser_over_api_ratio": round(through / api_p50, 2),
        "browser_over_endpoint_ratio": round(through / server_p50, 2),
        "scan_path_over_cube_path_ratio": round(
            scanned["request_start_to_text"]["p50_ms"] / through, 2
        ),
        "targets": {
            "live_count_round_trip_p50_ms_at_most": 50,
            "live_count_round_trip_means": "request_start_to_text (after the debounce)",
            "first_paint_p50_ms_at_most": 300,
            "first_paint_means": "first_contentful_paint (the page; its count follows: "
            "count_shown)",
        },
    }


def main() -> None:
    cli("web", run)


if __name__ == "__main__":
    main()
