"""Writing snapshots: `generate` a first version, and the pieces `refresh` shares.

Sealing the vault (AES-GCM + HMAC per number) is the costliest step, so it starts first, in
worker processes, as soon as ids and territories are drawn; the main process samples the other
attributes meanwhile. Workers are spawned, not forked, so they never hold a copy of the base.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import date
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from datasets import phones, reference, snapshot
from datasets.generate import (
    TERRITORY_CODES,
    Progress,
    _noop,
    attribute_chunks,
    numbers,
    plan,
    seal_chunk,
)
from kit import clock, keys

CHUNK = 250_000
TERRITORY = pa.dictionary(pa.int8(), pa.string())
CONTACTS_SCHEMA = pa.schema(
    [
        ("prospect_id", pa.int64()),
        ("phone_enc", pa.binary()),
        ("phone_hmac", pa.binary(32)),
        ("territory", TERRITORY),
        ("time_zone", TERRITORY),
    ]
)
UNIQUE = ("prospect_id", "proof_ref")
TIME_ZONES = [phones.TERRITORIES[t].time_zone for t in TERRITORY_CODES]


def write_attributes(parts: pl.DataFrame | Iterable[pl.DataFrame], path: Path) -> None:
    """Stream attribute frames into one Parquet file, atomically, in row groups of exactly
    ROW_GROUP rows (the last one excepted) whatever the frames' sizes."""
    frames = [parts] if isinstance(parts, pl.DataFrame) else parts
    tmp = path.with_name(f".{path.name}.tmp")
    writer: pq.ParquetWriter | None = None
    pending: list[pa.Table] = []
    try:
        for frame in frames:
            table = frame.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(
                    tmp,
                    table.schema,
                    compression="zstd",
                    # Unique per row: a dictionary attempt would cost time and be dropped.
                    use_dictionary=[c for c in table.column_names if c not in UNIQUE],
                )
            pending.append(table)
            whole = sum(t.num_rows for t in pending) // snapshot.ROW_GROUP * snapshot.ROW_GROUP
            if whole:
                ready = pa.concat_tables(pending)
                writer.write_table(ready.slice(0, whole), row_group_size=snapshot.ROW_GROUP)
                pending = [ready.slice(whole)]
        if writer is None:
            raise ValueError("no attributes to write")
        if pending and pending[0].num_rows:
            writer.write_table(pa.concat_tables(pending), row_group_size=snapshot.ROW_GROUP)
    finally:
        if writer is not None:
            writer.close()
    snapshot.replace_durably(tmp, path)


def write_contacts(path: Path, parts: Iterable[pa.Table]) -> None:
    """Stream contact tables into one Parquet file, atomically. Ciphertexts and HMACs are
    random bytes: neither compressed nor dictionary-encoded (it would cost time for nothing)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with pq.ParquetWriter(
        tmp,
        CONTACTS_SCHEMA,
        compression={
            "prospect_id": "zstd",
            "phone_enc": "none",
            "phone_hmac": "none",
            "territory": "zstd",
            "time_zone": "zstd",
        },
        use_dictionary=["territory", "time_zone"],
    ) as writer:
        for part in parts:
            writer.write_table(part.cast(CONTACTS_SCHEMA), row_group_size=snapshot.ROW_GROUP)
    snapshot.replace_durably(tmp, path)


def sealing_pool(workers: int | None = None) -> ProcessPoolExecutor:
    """Worker processes, all started now. A spawned worker re-runs the parent's `__main__` (the
    `rental` script, which imports the whole app: seconds of CPU and ~50 MB each) unless it is
    hidden while they start; the sealing code needs nothing from it."""
    count = workers or min(os.cpu_count() or 1, 4)
    pool = ProcessPoolExecutor(count, mp_context=get_context("spawn"))
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        for _ in range(count):  # each submit finds no idle worker yet, so each starts one
            pool.submit(int)
    finally:
        sys.modules["__main__"] = main
    return pool


def start_sealing(
    pool: ProcessPoolExecutor, ids: np.ndarray, national: np.ndarray, cc: np.ndarray
) -> list[Future[tuple[pa.Array, pa.Array]]]:
    vault_key, hmac_key = keys.vault_key(), keys.hmac_key()
    return [
        pool.submit(
            seal_chunk,
            (vault_key, hmac_key, ids[i : i + CHUNK], national[i : i + CHUNK], cc[i : i + CHUNK]),
        )
        for i in range(0, len(ids), CHUNK)
    ]


def contact_tables(
    futures: list[Future[tuple[pa.Array, pa.Array]]],
    ids: np.ndarray,
    territory: np.ndarray,
    progress: Progress = _noop,
) -> Iterator[pa.Table]:
    """The sealed chunks as contact tables, in order, as the workers finish them."""
    names, zones = pa.array(TERRITORY_CODES), pa.array(TIME_ZONES)
    for k, fut in enumerate(futures):
        cts, macs = fut.result()
        sl = slice(k * CHUNK, (k + 1) * CHUNK)
        codes = pa.array(territory[sl], type=pa.int8())
        yield pa.table(
            {
                "prospect_id": pa.array(ids[sl]),
                "phone_enc": cts,
                "phone_hmac": macs,
                "territory": pa.DictionaryArray.from_arrays(codes, names),
                "time_zone": pa.DictionaryArray.from_arrays(codes, zones),
            }
        )
        progress("encrypting contacts", min((k + 1) * CHUNK, len(ids)), len(ids))


class Background(threading.Thread):
    """Runs a function in a thread; `join()` re-raises its exception in the caller."""

    def __init__(self, fn: Callable[..., None], *args: Any) -> None:
        super().__init__(daemon=True)
        self.fn, self.args = fn, args
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.fn(*self.args)
        except BaseException as exc:  # handed to the joining thread
            self.error = exc

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise self.error


def territory_counts(territory: np.ndarray) -> dict[str, int]:
    codes, counts = np.unique(territory, return_counts=True)
    return {TERRITORY_CODES[int(c)]: int(n) for c, n in zip(codes, counts, strict=True)}


def generate_snapshot(
    root: Path, rows: int, seed: int, as_of: date, progress: Progress = _noop
) -> snapshot.Snapshot:
    """Write the next version under `root` from scratch and make it current."""
    if rows < 1:
        raise ValueError("--rows must be at least 1")
    version = snapshot.next_version(root)
    with snapshot.building(root, version) as tmp, sealing_pool() as pool:
        draft = plan(rows, seed)
        national, cc, number_counters = numbers(seed, draft.territory)
        futures = start_sealing(pool, draft.ids, national, cc)
        # A thread writes sealed chunks as the workers finish them (they never pile up in
        # memory) while this one draws and writes the attributes.
        writer = Background(
            write_contacts,
            tmp / snapshot.CONTACTS,
            contact_tables(futures, draft.ids, draft.territory, progress),
        )
        progress("sampling attributes", 0, rows)
        write_attributes(attribute_chunks(draft, seed, as_of), tmp / snapshot.ATTRIBUTES)
        progress("sampling attributes", rows, rows)
        writer.join()
        snapshot.write_manifest(
            tmp,
            manifest(
                version,
                rows,
                seed,
                as_of,
                territory_counts(draft.territory),
                interests=reference.interests()["code"].to_list(),  # bit order of `interests`
                counters={"prospect_id": rows, "numbers": number_counters},
            ),
        )
    snapshot.set_current(root, version)
    return snapshot.load(root, version)


def manifest(
    version: str, rows: int, seed: int, as_of: date, territories: dict[str, int], **extra: Any
) -> dict[str, Any]:
    return {
        "version": version,
        "created_at": clock.now().isoformat(timespec="seconds"),
        "as_of": as_of.isoformat(),
        "rows": rows,
        "schema_version": snapshot.SCHEMA_VERSION,
        "seed": seed,
        "synthetic": True,
        "generator": "datasets.generate (INSEE-derived distributions, see reference/SOURCES.md)",
        "territories": territories,
        **extra,
    }
