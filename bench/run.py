"""`make bench`: every benchmark, JSON lines on stdout, then the table of docs/benchmarks.md.

Sizes follow the issue's targets: generation, engine, HTTP, start-up and the web app (bench/web.py,
Chromium) at 10M prospects, engine at 50M;
the privacy attack suite (bench/privacy.py) on a 1M base.
Bases are generated once under bench/results/ and reused by later runs."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from bench import dispatch, generate, http, plan, privacy, quote, report, startup, web
from bench.common import RESULTS, emit

DISPATCH = "dispatch_2000000_1000000"  # 1M recipients (a 1M base has fewer eligible)
PLAN = "plan_2000000_1000000"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text())
    return doc


def saved(name: str) -> dict[str, Any] | None:
    """A benchmark's last saved result, or None when it was never run here."""
    return load(name) if (RESULTS / f"{name}.json").exists() else None


def table() -> str:
    """The table of every saved result (a benchmark never run here has no row)."""
    lines = [
        "| benchmark | measured | baseline(s), same run | ratio | target |",
        "|---|---|---|---|---|",
    ]
    g = saved("generate_10000000")
    if g:
        lines.append(
            f"| generate 10M prospects (whole process) | {g['wall_s']} s, "
            f"peak {g['peak_rss_gb']} GB (PSS) "
            f"| Faker row by row: {g['baseline_faker_rows_per_s']:,} rows/s vs ours "
            f"{g['rows_per_s']:,} rows/s | {g['speedup_vs_faker']}x | <= 10 s, <= 2 GB |"
        )
    for rows, target in ((10_000_000, "<= 10 ms"), (50_000_000, "<= 40 ms")):
        q = saved(f"quote_{rows}")
        for name, r in (q or {}).get("queries", {}).items():
            lines.append(
                f"| engine {rows // 1_000_000}M: {name} (count + exclusions + 1 breakdown), "
                f"{r.get('path', 'scan')} | p50 {r['engine_p50_ms']} ms "
                f"| the scan {r.get('scan_p50_ms', '-')} ms; raw DuckDB on Parquet "
                f"{r['raw_duckdb_parquet_p50_ms']} ms | {r['speedup_vs_raw_duckdb']}x raw DuckDB "
                f"| {target} |"
            )
    lines.extend(_quote_extras(saved("quote_10000000")))
    h = saved("http_10000000") or {"queries": {}}
    for name, r in h["queries"].items():
        lines.append(
            f"| HTTP POST /v1/quotes 10M: {name} ({r['engine_path']}) "
            f"| p50 {r['http_post_quotes_p50_ms']} ms | engine alone "
            f"{r['engine_same_query_p50_ms']} ms (on the scan "
            f"{r['engine_same_query_on_the_scan_p50_ms']} ms); GET floor "
            f"{h['http_get_floor_p50_ms']} ms | +{r['http_overhead_ms']} ms | <= 20 ms |"
        )
    st = saved("startup_10000000")
    if st:
        lines.append(
            f"| API ready after start 10M (to the first quote answered) | {st['cached_s']} s "
            f"from the prepared base | cold start {st['cold_s']} s; importing the app "
            f"{st['import_app_s']} s | {st['cached_over_cold']} | <= 2 s |"
        )
    lines.extend(speed_rows())
    web = saved("web_10000000")
    if web:
        lines.extend(web_rows(web))
    privacy_doc = saved("privacy_1000000")
    if privacy_doc:
        lines.extend(privacy_rows(privacy_doc))
    return "\n".join(lines)


def _quote_extras(q: dict[str, Any] | None) -> list[str]:
    """Row order and the privacy weights' cost (issues 1 and 13) at 10M."""
    if not q:
        return []
    lines = []
    order = q.get("row_order")
    if order and q["queries"]["riviera_managers"].get("path", "scan") == "scan":
        sorted_p50 = q["queries"]["riviera_managers"]["engine_p50_ms"]
        shuffled = order["riviera_managers_rows_in_random_order_p50_ms"]
        lines.append(
            f"| engine 10M: riviera_managers, rows stored by department | p50 {sorted_p50} ms "
            f"| same rows in random order: {shuffled} ms | {round(shuffled / sorted_p50, 1)}x | - |"
        )
    for name, r in q["queries"].items():
        w = r.get("privacy_weights")
        if w:  # issue 13: what the sample byte adds to the quote's own count
            lines.append(
                f"| privacy weights' cost, quote 10M: {name} (count + default breakdowns) "
                f"| p50 {w['quote_count_p50_ms']} ms | same count without the sample "
                f"{w['without_sample_p50_ms']} ms | +{w['sample_cost_p50_ms']} ms "
                f"({w['ratio']}x) | <= +2 ms |"
            )
    return lines


def speed_rows() -> list[str]:
    """Issue 16's dispatch, planning and report rows, from their saved results."""
    lines = []
    for db in ("sqlite", "postgresql"):
        d = saved(DISPATCH + ("" if db == "sqlite" else "_postgresql"))
        if d:
            u, base = d["uncapped"], d["baseline_celery_noop"]["messages_per_s"]
            target = 50_000 if db == "sqlite" else 30_000
            lines.append(
                f"| dispatch 1M recipients, {db}, messages/s (ledger written) "
                f"| {u['messages_per_s']:,} (slope {u['messages_per_s_slope']:,}); receipts "
                f"applied {u['messages_per_s_receipts_applied']:,}/s | Celery no-op tasks "
                f"{base:,}/s | {d['ratio_to_baseline']} | >= {target:,}; receipts >= 50,000/s |"
            )
            capped = next((v for k, v in d.items() if k.startswith("cap_")), None)
            if capped:
                lines.append(
                    f"| carrier cap {capped['cap']}/s, {capped['quantity']:,} messages, {db} "
                    f"| slope {capped['messages_per_s_slope']} /s, first-to-last "
                    f"{capped['messages_per_s']} /s | - | "
                    f"{round(capped['messages_per_s_slope'] / capped['cap'] - 1, 4):+.2%} "
                    f"| within 1% |"
                )
        p = saved(PLAN + ("" if db == "sqlite" else "_postgresql"))
        if p:
            floor = p["baseline_bare_executemany"]["seconds"]
            lines.append(
                f"| planning 1M recipients (draw, reservations, ledger), {db} | {p['plan_s']} s "
                f"| the same ledger rows by one bare executemany {floor} s "
                f"| {p['ratio_to_baseline']} | <= 5 s |"
            )
    r = saved("report_1000000")
    if r:
        lines.append(
            f"| report of a 1M-recipient order | p50 {r['build_p50_ms']} ms, peak "
            f"{r['peak_rss_mb_tallies']} MB | from the ledger "
            f"{r['baseline_build_from_ledger_p50_ms']} ms, {r['peak_rss_mb_ledger']} MB; "
            "ledger read alone "
            f"{r['baseline_ledger_read_p50_ms']} ms | {r['ratio_vs_build_from_ledger']} "
            f"| <= 500 ms, <= 200 MB |"
        )
    return lines


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


def speed() -> None:
    """Issue 16's dispatch (1M recipients, then 15,000 under a cap of 500/s), planning and
    report benchmarks, on SQLite and on a throwaway PostgreSQL cluster."""
    emit(DISPATCH, dispatch.run(2_000_000, 1_000_000, 500))
    with plan.throwaway_postgres(True) as url:
        assert url is not None  # noqa: S101
        os.environ["RENTAL_DATABASE_URL"] = url
        try:
            emit(DISPATCH + "_postgresql", dispatch.run(2_000_000, 1_000_000, 500))
        finally:
            del os.environ["RENTAL_DATABASE_URL"]
    emit(PLAN, plan.run(2_000_000, 1_000_000, False, None))
    emit(PLAN + "_postgresql", plan.run(2_000_000, 1_000_000, True, None))
    emit("report_1000000", report.run(1_000_000))


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
    speed()
    emit("web_10000000", web.run(10_000_000))
    emit("privacy_1000000", privacy.run(1_000_000, privacy.Plan()))
    print(table())


if __name__ == "__main__":
    main()
