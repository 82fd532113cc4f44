"""The DuckDB engine over one base snapshot: counts, breakdowns and deterministic samples.

One DuckDB connection per process; each request takes its own `cursor()`. The snapshot's
attributes are loaded once into DuckDB's columnar storage (rows keep the snapshot's department
order, so min/max pruning per row group still works), which answers a count several times faster
than re-reading Parquet on every quote; see bench/quote.py.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from datasets import snapshot as snap
from segmentation.compiler import Sql, age_band_sql, compile_criteria, eligibility
from segmentation.criteria import Criteria

DIMENSIONS = ("region", "department", "age_band", "sex", "csp")


@dataclass(frozen=True)
class CountResult:
    total: int
    breakdowns: dict[str, dict[str, int]]


class Engine:
    """Counts over one snapshot. Thread-safe: every call uses its own cursor."""

    def __init__(
        self,
        snapshot: snap.Snapshot,
        threads: int = 2,
        memory_limit: str = "4GB",
        materialize: bool = True,
    ) -> None:
        self.snapshot = snapshot
        self.interest_bits: list[str] = list(snapshot.manifest["interests"])
        self._con = duckdb.connect(config={"threads": threads, "memory_limit": memory_limit})
        if materialize:
            self._con.execute(
                "CREATE TABLE attributes AS SELECT * FROM read_parquet(?)",
                [str(snapshot.attributes)],
            )
        else:
            # A view cannot take a parameter; the path is ours (never user input), quoted safely.
            path = str(snapshot.attributes).replace("'", "''")
            self._con.execute(
                f"CREATE VIEW attributes AS SELECT * FROM read_parquet('{path}')"  # noqa: S608
            )
        self._lock = threading.Lock()

    def close(self) -> None:
        self._con.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            return self._con.cursor()

    def _where(
        self, criteria: Criteria, today: date, inactivity_years: int, excluded: pa.Table | None
    ) -> Sql:
        sql = compile_criteria(criteria, today, self.interest_bits)
        eligibility(
            sql,
            today,
            inactivity_years,
            with_exclusions=excluded is not None and excluded.num_rows > 0,
        )
        return sql

    def count(
        self,
        criteria: Criteria,
        today: date,
        inactivity_years: int,
        excluded: pa.Table | None = None,
        dimensions: tuple[str, ...] = DIMENSIONS,
    ) -> CountResult:
        """Exact eligible count and exact breakdowns, in one scan (GROUPING SETS)."""
        sql = self._where(criteria, today, inactivity_years, excluded)
        band, band_params = age_band_sql(today)
        dims = [d for d in DIMENSIONS if d in dimensions]
        sets = ", ".join(["()"] + [f"({d})" for d in dims])
        cols = ", ".join(dims)
        select_dims = ", ".join(
            f"CAST({d} AS VARCHAR) AS {d}" if d != "age_band" else f"{band} AS age_band"
            for d in dims
        )
        query = (
            (
                # Column names come from DIMENSIONS, values are bound: no input reaches the text.
                f"SELECT GROUPING({cols}) AS g, {cols}, count(*) AS n FROM ("  # noqa: S608
                f"SELECT {select_dims} FROM attributes WHERE {sql.where()}"
                f") GROUP BY GROUPING SETS ({sets})"
            )
            if dims
            else f"SELECT count(*) AS n FROM attributes WHERE {sql.where()}"  # noqa: S608
        )
        params = (band_params if "age_band" in dims else []) + sql.params
        cur = self.cursor()
        try:
            if excluded is not None and excluded.num_rows:
                cur.register("excluded", excluded)
            rows = cur.execute(query, params).fetchall()
        finally:
            cur.close()
        if not dims:
            return CountResult(int(rows[0][0]), {})
        total = 0
        breakdowns: dict[str, dict[str, int]] = {d: {} for d in dims}
        full = (1 << len(dims)) - 1
        for row in rows:
            g, values, n = row[0], row[1:-1], int(row[-1])
            if g == full:
                total = n
                continue
            i = next(j for j in range(len(dims)) if not g & (1 << (len(dims) - 1 - j)))
            breakdowns[dims[i]][str(values[i])] = n
        return CountResult(total, breakdowns)

    def matching_ids(
        self,
        criteria: Criteria,
        today: date,
        inactivity_years: int,
        excluded: pa.Table | None = None,
    ) -> np.ndarray:
        sql = self._where(criteria, today, inactivity_years, excluded)
        cur = self.cursor()
        try:
            if excluded is not None and excluded.num_rows:
                cur.register("excluded", excluded)
            table = cur.sql(
                f"SELECT prospect_id FROM attributes WHERE {sql.where()}",  # noqa: S608 (bound)
                params=sql.params,
            ).to_arrow_table()
        finally:
            cur.close()
        return np.asarray(table.column(0).to_numpy(), dtype=np.int64)

    def sample(
        self,
        criteria: Criteria,
        size: int,
        key: str,
        today: date,
        inactivity_years: int,
        excluded: pa.Table | None = None,
    ) -> np.ndarray:
        """`size` eligible prospect ids, always the same for the same key (e.g. an order id)."""
        ids = self.matching_ids(criteria, today, inactivity_years, excluded)
        return deterministic_sample(ids, size, key)

    def resolve_hmacs_with_keys(self, hmacs: list[bytes]) -> dict[bytes, np.ndarray]:
        """For each HMAC present in this snapshot's contacts, the prospect ids holding it."""
        if not hmacs:
            return {}
        cur = self.cursor()
        try:
            cur.register("wanted", pa.table({"h": pa.array(hmacs, type=pa.binary())}))
            rows = cur.sql(
                "SELECT c.phone_hmac::BLOB, c.prospect_id FROM read_parquet(?) c "
                "WHERE c.phone_hmac::BLOB IN (SELECT h FROM wanted)",
                params=[str(self.snapshot.contacts)],
            ).fetchall()
        finally:
            cur.close()
        out: dict[bytes, list[int]] = {}
        for h, pid in rows:
            out.setdefault(bytes(h), []).append(int(pid))
        return {h: np.asarray(v, dtype=np.int64) for h, v in out.items()}

    def resolve_hmacs(self, hmacs: list[bytes]) -> np.ndarray:
        """Prospect ids of this snapshot whose number has one of these HMACs."""
        found = self.resolve_hmacs_with_keys(hmacs)
        return np.concatenate(list(found.values())) if found else np.empty(0, dtype=np.int64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fixed, well-mixed permutation of 64-bit integers."""
    z = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def deterministic_sample(ids: np.ndarray, size: int, key: str) -> np.ndarray:
    """The `size` ids with the smallest keyed hash: same key and ids -> same sample, in any order
    and on any version of any library (no engine-specific hash function is involved)."""
    if size >= len(ids):
        return np.sort(ids)
    salt = np.uint64(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
    with np.errstate(over="ignore"):
        scores = _mix(ids.astype(np.uint64) ^ salt)
    pick = np.argpartition(scores, size - 1)[:size]
    return np.sort(ids[pick])


def open_engine(path: Path, **kwargs: Any) -> Engine:
    return Engine(snap.current(path), **kwargs)
