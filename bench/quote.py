"""The quote engine: count + opt-out exclusion + one breakdown, p50 over repeated queries.

Baselines on the same snapshot, the same queries and the same excluded set, in the same run:
- raw DuckDB: SQL over the Parquet file, VARCHAR columns, NOT IN anti-join on the excluded ids;
- pandas: the same columns loaded into memory (categoricals), boolean masks, `isin` anti-join.
All three must agree on every count (checked), so the comparison is like for like.

Counts on sex, age and places alone are answered from the engine's cube (segmentation/cube.py)
and other counts on attributes from its bitsets (segmentation/bitmaps.py), without a scan: each
query says which path answered it and is also timed on the scan (cube and bitsets turned off)
and, when the cube answers it, on the bitsets, in the same run, as are the segment builder's
counts. `bitmaps` says what the bitsets cost: memory, the time to make them, a delta.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from bench.common import cli, ensure_base, p50_ms
from datasets import snapshot
from segmentation.compiler import birth_bounds, years_before
from segmentation.criteria import Criteria
from segmentation.engine import Engine

TODAY = date(2026, 11, 26)
QUERIES: dict[str, dict[str, Any]] = {
    "women_25_45": {"sex": ["F"], "age": {"min": 25, "max": 45}},
    "riviera_managers": {"departments": ["06", "83"], "csp": ["3", "4"]},
    "travel_owners": {"interests": ["travel"], "income": ["C", "D"], "housing": ["owner"]},
    # Age with an interest: the bitsets' age bit-planes (the cube holds no interests).
    "young_travellers": {"interests": ["travel"], "age": {"min": 25, "max": 45}},
}
LIST_CRITERIA = (("departments", "department"), ("csp", "csp"), ("income", "income"),
                 ("housing", "housing"))  # fmt: skip
BUILDER = ("region", "department", "age_band", "sex")  # the segment builder's breakdowns
EXCLUDED_SHARE = 0.01  # 1% of the base opted out / under pressure / reserved


def raw_duckdb(
    con: duckdb.DuckDBPyConnection, path: str, crit: dict[str, Any], bits: list[str]
) -> dict[str, int]:
    where: list[str] = ["opt_in", "last_interaction >= ?"]
    params: list[Any] = [years_before(TODAY, 3)]
    if "sex" in crit:
        where.append("sex IN (SELECT unnest(?::VARCHAR[]))")
        params.append(crit["sex"])
    if "age" in crit:
        hi, lo = birth_bounds(TODAY, crit["age"]["min"], crit["age"]["max"])
        where.append("birth_date <= ? AND birth_date > ?")
        params += [hi, lo]
    for key, col in LIST_CRITERIA:
        if key in crit:
            where.append(f"{col} IN (SELECT unnest(?::VARCHAR[]))")
            params.append(crit[key])
    if "interests" in crit:
        where.append("(interests & ?) <> 0")
        params.append(sum(1 << bits.index(i) for i in crit["interests"]))
    where.append("prospect_id NOT IN (SELECT prospect_id FROM excluded)")
    rows = con.execute(
        f"SELECT department, count(*) FROM read_parquet('{path}') "  # noqa: S608 (bench)
        f"WHERE {' AND '.join(where)} GROUP BY department",
        params,
    ).fetchall()
    return {str(d): int(n) for d, n in rows}


def pandas_count(
    df: pd.DataFrame, excluded: pd.Index, crit: dict[str, Any], bits: list[str]
) -> dict[str, int]:
    m = (
        df["opt_in"].to_numpy()
        & (df["last_interaction"] >= pd.Timestamp(years_before(TODAY, 3))).to_numpy()
    )
    if "sex" in crit:
        m &= df["sex"].isin(crit["sex"]).to_numpy()
    if "age" in crit:
        hi, lo = birth_bounds(TODAY, crit["age"]["min"], crit["age"]["max"])
        b = df["birth_date"]
        m &= ((b <= pd.Timestamp(hi)) & (b > pd.Timestamp(lo))).to_numpy()
    for key, col in LIST_CRITERIA:
        if key in crit:
            m &= df[col].isin(crit[key]).to_numpy()
    if "interests" in crit:
        mask = sum(1 << bits.index(i) for i in crit["interests"])
        m &= (df["interests"].to_numpy() & mask) != 0
    m &= ~df["prospect_id"].isin(excluded).to_numpy()
    counts = df.loc[m, "department"].value_counts()
    return {str(k): int(v) for k, v in counts.items() if v}


def row_order_effect(snap: snapshot.Snapshot, excluded: np.ndarray) -> dict[str, float]:
    """The geographic query on the same rows stored in random order: what sorting by
    department (row-group pruning) buys."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-shuffled-"))
    try:
        shuffled = tmp / snap.version
        shuffled.mkdir()
        con = duckdb.connect()
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{snap.attributes}') ORDER BY hash(prospect_id)) "  # noqa: S608
            f"TO '{shuffled / snapshot.ATTRIBUTES}' "
            f"(FORMAT parquet, ROW_GROUP_SIZE {snapshot.ROW_GROUP})"
        )
        con.close()
        # The engine prepares only verified files: the same contacts, the new file's checksum.
        (shuffled / snapshot.CONTACTS).symlink_to(snap.contacts)
        manifest = dict(snap.manifest)
        manifest["checksums"] = dict(
            manifest.get("checksums", {}),
            **{snapshot.ATTRIBUTES: snapshot.sha256(shuffled / snapshot.ATTRIBUTES)},
        )
        engine = Engine(snapshot.Snapshot(tmp, snap.version, manifest))
        engine.sync_eligibility(TODAY, 3, excluded)
        engine.wait_for_bitmaps()  # none: rows in random order are not department ranges
        c = Criteria.model_validate(QUERIES["riviera_managers"])
        unsorted = p50_ms(partial(engine.count, c, TODAY, ("department",)))
        engine.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"riviera_managers_rows_in_random_order_p50_ms": unsorted}


def sample_cost(engine: Engine, crit: Criteria, repeat: int = 41) -> dict[str, float]:
    """What the privacy weights add to a quote's scan (issue 13: at most +2 ms p50 at 10M): the
    quote's own count (default breakdowns, `sum(w)` of the person sample) against the same scan
    without the sample, called alternately so that both see the same machine."""
    with_w, without, diffs = [], [], []
    for i in range(repeat + 3):
        t0 = time.perf_counter()
        engine.count(crit, TODAY)
        t1 = time.perf_counter()
        engine.count(crit, TODAY, with_sample=False)
        t2 = time.perf_counter()
        if i >= 3:  # warm-up
            with_w.append(t1 - t0)
            without.append(t2 - t1)
            diffs.append((t1 - t0) - (t2 - t1))

    def ms(xs: list[float]) -> float:
        return round(statistics.median(xs) * 1000, 2)

    return {
        "quote_count_p50_ms": ms(with_w),
        "without_sample_p50_ms": ms(without),
        "sample_cost_p50_ms": ms(diffs),
        "ratio": round(statistics.median(with_w) / statistics.median(without), 3),
    }


def scan_p50_ms(engine: Engine, c: Criteria, dims: tuple[str, ...], bits: bool = False) -> float:
    """The same count with the cube (and unless `bits`, the bitsets) turned off: what the scan
    alone takes (or the bitsets)."""
    engine._cube_enabled = False  # bench knobs, private on purpose
    engine._bits_enabled = bits
    try:
        return p50_ms(partial(engine.count, c, TODAY, dims))
    finally:
        engine._cube_enabled = engine._bits_enabled = True


def timed_paths(engine: Engine, c: Criteria, dims: tuple[str, ...]) -> dict[str, Any]:
    """The count on its own path, on the bitsets when the cube answers it, and on the scan."""
    path = engine.path(c, TODAY, dims)
    out: dict[str, Any] = {"path": path, "p50_ms": p50_ms(partial(engine.count, c, TODAY, dims))}
    if path == "cube":
        out["bitmaps_p50_ms"] = scan_p50_ms(engine, c, dims, bits=True)
    out["scan_p50_ms"] = scan_p50_ms(engine, c, dims) if path != "scan" else out["p50_ms"]
    out["ratio_scan_to_path"] = round(out["scan_p50_ms"] / out["p50_ms"], 1)
    return out


def bitmaps_cost(engine: Engine, excluded: np.ndarray, more: np.ndarray) -> dict[str, Any]:
    """What the bitsets cost: memory, reading the rows' part, the day's part, a delta."""
    bits = engine._bits
    assert bits is not None  # noqa: S101 (bench: made by the sync above)
    cur = engine.cursor()
    try:
        t = time.perf_counter()
        columns = engine._read_columns(cur)
        columns_s = time.perf_counter() - t
        t = time.perf_counter()
        engine._day_bitmaps(cur, columns, (TODAY, years_before(TODAY, 3)), excluded)
        day_s = time.perf_counter() - t
    finally:
        cur.close()
    t = time.perf_counter()
    bits.changed(engine._rowids(more[-1_000:]), engine._rowids(more[:0]))
    delta_ms = (time.perf_counter() - t) * 1000
    return {
        "memory_mb": round(bits.nbytes() / 1e6, 1),
        "bitsets": bits.count_sets(),
        "rows_part_s": round(columns_s, 3),
        "day_part_s": round(day_s, 3),
        "delta_1000_ids_ms": round(delta_ms, 2),
    }


def builder_counts(engine: Engine) -> dict[str, Any]:
    """The segment builder's count (region, department, age band, sex) of the whole base and
    of the women, from the cube and from the scan; and what making the cube takes."""
    out: dict[str, Any] = {}
    for name, crit in (("everyone", {}), ("women", {"sex": ["F"]})):
        c = Criteria.model_validate(crit)
        out[name] = timed_paths(engine, c, BUILDER)
    cur = engine.cursor()
    try:
        out["cube_build_p50_ms"] = p50_ms(partial(engine._cells, cur, TODAY, "TRUE"), 5, 1)
    finally:
        cur.close()
    return out


def run(rows: int) -> dict[str, Any]:
    h = ensure_base(rows)
    snap = snapshot.current(h / "base")
    t = time.perf_counter()
    engine = Engine(snap)
    load_s = time.perf_counter() - t
    bits = engine.layout.interest_bits
    con = duckdb.connect(config={"threads": 2})
    path = str(snap.attributes)
    query = f"SELECT prospect_id FROM read_parquet('{path}')"  # noqa: S608 (bench path)
    all_ids = con.execute(query).fetchnumpy()["prospect_id"]
    rng = np.random.default_rng(0)
    excluded = rng.choice(all_ids, size=int(len(all_ids) * EXCLUDED_SHARE), replace=False)
    con.register("excluded", pa.table({"prospect_id": excluded}))
    t = time.perf_counter()
    engine.sync_eligibility(TODAY, 3, excluded)
    full_sync_s = time.perf_counter() - t
    t = time.perf_counter()
    engine.wait_for_bitmaps()  # made beside the first sync
    first_bitmaps_s = time.perf_counter() - t
    more = np.concatenate([excluded, rng.choice(all_ids, size=1_000, replace=False)])
    t = time.perf_counter()
    engine.sync_eligibility(TODAY, 3, more)
    delta_sync_s = time.perf_counter() - t
    engine.sync_eligibility(TODAY, 3, excluded)

    cols = [
        "prospect_id",
        "sex",
        "birth_date",
        "department",
        "csp",
        "income",
        "housing",
        "interests",
        "opt_in",
        "last_interaction",
    ]
    t = time.perf_counter()
    pdf = con.execute(f"SELECT {', '.join(cols)} FROM read_parquet('{path}')").df()  # noqa: S608
    for col in ("sex", "department", "csp", "income", "housing"):
        pdf[col] = pdf[col].astype("category")
    pdf["birth_date"] = pd.to_datetime(pdf["birth_date"])
    pdf["last_interaction"] = pd.to_datetime(pdf["last_interaction"])
    pandas_load_s = time.perf_counter() - t
    excluded_index = pd.Index(excluded)

    out: dict[str, Any] = {"rows": rows, "excluded": len(excluded), "queries": {}}
    out["load_1m_before"] = round(os.getloadavg()[0], 2)  # the machine is shared
    for name, crit in QUERIES.items():
        c = Criteria.model_validate(crit)
        ours = engine.count(c, TODAY, ("department",))
        raw = raw_duckdb(con, path, crit, bits)
        pan = pandas_count(pdf, excluded_index, crit, bits)
        if not (ours.breakdowns["department"] == raw == pan):
            raise SystemExit(f"{name}: engines disagree")
        paths = timed_paths(engine, c, ("department",))
        o = paths["p50_ms"]
        r = p50_ms(partial(raw_duckdb, con, path, crit, bits), repeat=9)
        p = p50_ms(partial(pandas_count, pdf, excluded_index, crit, bits), repeat=5, warmup=1)
        out["queries"][name] = {
            "count": ours.total,
            "path": paths.pop("path"),
            "engine_p50_ms": o,
            **{k: v for k, v in paths.items() if k != "p50_ms"},
            "quote_breakdowns": timed_paths(engine, c, ("region", "department")),
            "raw_duckdb_parquet_p50_ms": r,
            "pandas_p50_ms": p,
            "speedup_vs_raw_duckdb": round(r / o, 1),
            "speedup_vs_pandas": round(p / o, 1),
            "privacy_weights": sample_cost(engine, c),
        }
    out["builder"] = builder_counts(engine)
    out["bitmaps"] = bitmaps_cost(engine, excluded, more)
    if rows <= 10_000_000:
        out["row_order"] = row_order_effect(snap, excluded)
    p50s = sorted(q["engine_p50_ms"] for q in out["queries"].values())
    out["engine_p50_ms_median_of_queries"] = p50s[len(p50s) // 2]
    out["engine_p50_ms_worst_query"] = p50s[-1]
    out["load_s"] = round(load_s, 2)
    out["pandas_load_s"] = round(pandas_load_s, 2)
    out["eligibility_full_sync_s"] = round(full_sync_s, 3)
    out["first_bitmaps_after_sync_s"] = round(first_bitmaps_s, 3)
    out["eligibility_delta_sync_1000_s"] = round(delta_sync_s, 3)
    out["load_1m_after"] = round(os.getloadavg()[0], 2)
    out["target_p50_ms"] = {10_000_000: 10, 50_000_000: 40}.get(rows)  # issue 16, broad queries
    costs = [q["privacy_weights"]["sample_cost_p50_ms"] for q in out["queries"].values()]
    out["privacy_weights_cost_p50_ms_worst_query"] = max(costs)
    out["privacy_weights_cost_target_ms"] = 2.0 if rows == 10_000_000 else None
    return out


def main() -> None:
    cli("quote", run)


if __name__ == "__main__":
    main()
