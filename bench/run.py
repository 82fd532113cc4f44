"""`make bench`: every benchmark, JSON lines on stdout, then the table of docs/benchmarks.md.

Sizes follow the issue's targets: generation, engine, HTTP, start-up and the web app (bench/web.py,
Chromium) at 10M prospects, engine at 50M;
the privacy attack suite (bench/privacy.py) on a 1M base.
Bases are generated once under bench/results/ and reused by later runs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench import generate, http, privacy, quote, startup, web
from bench.common import RESULTS, emit


def table() -> str:
    def load(name: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text())
        return doc

    lines = [
        "| benchmark | measured | baseline(s), same run | ratio | target |",
        "|---|---|---|---|---|",
    ]
    g = load("generate_10000000")
    lines.append(
        f"| generate 10M prospects (whole process) | {g['wall_s']} s, "
        f"peak {g['peak_rss_gb']} GB (PSS) "
        f"| Faker row by row: {g['baseline_faker_rows_per_s']:,} rows/s vs ours "
        f"{g['rows_per_s']:,} rows/s | {g['speedup_vs_faker']}x | <= 25 s, <= 3 GB |"
    )
    for rows in (10_000_000, 50_000_000):
        q = load(f"quote_{rows}")
        target = "<= 25 ms" if rows == 10_000_000 else "<= 100 ms"
        for name, r in q["queries"].items():
            lines.append(
                f"| engine {rows // 1_000_000}M: {name} (count + exclusions + 1 breakdown) "
                f"| p50 {r['engine_p50_ms']} ms "
                f"| raw DuckDB on Parquet {r['raw_duckdb_parquet_p50_ms']} ms; "
                f"pandas {r['pandas_p50_ms']} ms | {r['speedup_vs_raw_duckdb']}x / "
                f"{r['speedup_vs_pandas']}x | {target} |"
            )
    order = load("quote_10000000").get("row_order")
    if order:
        sorted_p50 = load("quote_10000000")["queries"]["riviera_managers"]["engine_p50_ms"]
        shuffled = order["riviera_managers_rows_in_random_order_p50_ms"]
        lines.append(
            f"| engine 10M: riviera_managers, rows stored by department | p50 {sorted_p50} ms "
            f"| same rows in random order: {shuffled} ms | {round(shuffled / sorted_p50, 1)}x | - |"
        )
    for name, r in load("quote_10000000")["queries"].items():
        w = r.get("privacy_weights")
        if w:  # issue 13: what the sample byte adds to the quote's own count
            lines.append(
                f"| privacy weights' cost, quote 10M: {name} (count + default breakdowns) "
                f"| p50 {w['quote_count_p50_ms']} ms | same scan without the sample "
                f"{w['without_sample_p50_ms']} ms | +{w['sample_cost_p50_ms']} ms "
                f"({w['ratio']}x) | <= +2 ms |"
            )
    h = load("http_10000000")
    lines.append(
        f"| HTTP POST /v1/quotes 10M | p50 {h['http_post_quotes_p50_ms']} ms | engine alone "
        f"{h['engine_same_query_p50_ms']} ms; GET floor {h['http_get_floor_p50_ms']} ms | "
        f"+{h['http_overhead_ms']} ms | <= 40 ms |"
    )
    if (RESULTS / "startup_10000000.json").exists():
        st = load("startup_10000000")
        lines.append(
            f"| API ready after start 10M (to the first quote answered) | {st['cached_s']} s "
            f"from the prepared base | cold start {st['cold_s']} s; importing the app "
            f"{st['import_app_s']} s | {st['cached_over_cold']} | <= 2 s |"
        )
    if (RESULTS / "web_10000000.json").exists():
        lines.extend(web_rows(load("web_10000000")))
    if (RESULTS / "privacy_1000000.json").exists():
        lines.extend(privacy_rows(load("privacy_1000000")))
    return "\n".join(lines)


def web_rows(doc: dict[str, Any]) -> list[str]:
    """The web app in Chromium (issue 14): the builder's first paint and when its count shows,
    the live count's round trip after a click (without and with the page's wait before it
    sends)."""
    paint, live = doc["first_paint"], doc["live_count"]
    fcp, through = paint["first_contentful_paint"], live["request_start_to_text"]
    same = doc["baseline_api_post_quotes_builder_breakdowns_p50_ms"]
    return [
        f"| web 10M: builder's first contentful paint ({paint['loads']} loads) "
        f"| p50 {fcp['p50_ms']} ms, p95 {fcp['p95_ms']} ms "
        f"| the page's HTML received (responseEnd) p50 {paint['response_end']['p50_ms']} ms; "
        f"cold first load {paint['cold_first_load_ms']['first_contentful_paint']} ms | - "
        f"| <= 300 ms |",
        f"| web 10M: builder's count shown (the page is sent first, its count asked at once) "
        f"| p50 {paint['count_shown']['p50_ms']} ms, p95 {paint['count_shown']['p95_ms']} ms "
        f"| the count asked p50 {paint['count_request_start']['p50_ms']} ms, answered p50 "
        f"{paint['count_response_end']['p50_ms']} ms | - | - |",
        f"| web 10M: live count, request sent to new text ({live['clicks']} clicks on "
        f"{live.get('ticked', 'sex=F')}, the engine's cube) "
        f"| p50 {through['p50_ms']} ms, p95 {through['p95_ms']} ms "
        f"| the page's count endpoint by httpx {doc['baseline_web_count_endpoint_httpx_p50_ms']} "
        f"ms; POST /v1/quotes {doc['baseline_api_post_quotes_p50_ms']} ms, with the builder's "
        f"breakdowns {same} ms | {round(through['p50_ms'] / same, 2)}x the API with the "
        f"builder's breakdowns, {doc['browser_over_api_ratio']}x its default | <= 50 ms |",
        *_scan_row(doc),
        f"| web 10M: live count, click to new text (with the {live['debounce_ms']} ms wait) "
        f"| p50 {live['click_to_text_with_debounce']['p50_ms']} ms, "
        f"p95 {live['click_to_text_with_debounce']['p95_ms']} ms | click to request sent "
        f"p50 {live['click_to_request_start']['p50_ms']} ms | - | - |",
    ]


def _scan_row(doc: dict[str, Any]) -> list[str]:
    """The live count on a criterion the engine answers by scanning its rows."""
    scan = doc.get("live_count_scan_path")
    if not scan:
        return []
    through = scan["request_start_to_text"]
    return [
        f"| web 10M: live count, request sent to new text ({scan['clicks']} clicks on "
        f"{scan['ticked']}, a scan of the rows) | p50 {through['p50_ms']} ms, "
        f"p95 {through['p95_ms']} ms | the same on the cube "
        f"{doc['live_count']['request_start_to_text']['p50_ms']} ms "
        f"| {doc['scan_path_over_cube_path_ratio']}x the cube's | <= 50 ms |"
    ]


def privacy_rows(doc: dict[str, Any]) -> list[str]:
    """The attack suite (issue 13): per mechanism and family, the RMSE of the estimate of a
    group of 1-99 after the last budget, the curve before it, and the target."""
    lines = []
    targets = doc["targets"]
    for mech, m in doc["mechanisms"].items():
        for fam, f in m["families"].items():
            target = targets[
                "rmse_five_organisations_30_days_at_least"
                if fam == "collusion"
                else "rmse_one_organisation_30_days_at_least"
            ]
            curve = ", ".join(f"{q:,}: {r}" for q, r in zip(f["quotes"], f["rmse"], strict=True))
            lines.append(
                f"| privacy {mech}: {fam}, RMSE of |T| (1-99) after {f['quotes'][-1]:,} quotes "
                f"| {f['rmse'][-1]} | by quotes spent: {curve} | - | >= {target} |"
            )
        ms = m["membership"]
        best = max(ms["accuracy_mean_rule"][-1], ms["accuracy_any_difference_rule"][-1])
        lines.append(
            f"| privacy {mech}: membership of one person, accuracy after "
            f"{ms['quotes'][-1]:,} quotes | {best} "
            f"| mean rule {ms['accuracy_mean_rule']}, any-difference rule "
            f"{ms['accuracy_any_difference_rule']} at {ms['quotes']} | - | <= "
            f"{targets['membership_accuracy_at_most']} |"
        )
        for size, u in m["utility"].items():
            lines.append(
                f"| privacy {mech}: counts of ~{int(size):,}, p95 relative error "
                f"| {u['p95_relative_error']:.2%} | p50 {u['p50_relative_error']:.2%} | - "
                f"| <= {targets['utility_p95_relative_error_at_most'][size]:.0%} |"
            )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-50m", action="store_true", help="skip the 50M engine benchmark")
    ap.add_argument("--table", action="store_true", help="only print the table of saved results")
    args = ap.parse_args()
    if args.table:
        print(table())
        return
    emit("generate_10000000", generate.run(10_000_000))
    emit("quote_10000000", quote.run(10_000_000))
    if not args.skip_50m:
        emit("quote_50000000", quote.run(50_000_000))
    emit("http_10000000", http.run(10_000_000))
    emit("startup_10000000", startup.run(10_000_000, None, None))
    emit("web_10000000", web.run(10_000_000))
    emit("privacy_1000000", privacy.run(1_000_000, privacy.Plan()))
    print(table())


if __name__ == "__main__":
    main()
