"""Writing snapshots: `generate` a first version, shared helpers for `refresh`."""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from datasets import phones, reference, snapshot
from datasets.generate import Progress, _noop, attributes, numbers, seal_chunk
from kit import clock, keys

CHUNK = 200_000
CONTACTS_SCHEMA = pa.schema(
    [
        ("prospect_id", pa.int64()),
        ("phone_enc", pa.binary()),
        ("phone_hmac", pa.binary(32)),
        ("territory", pa.string()),
        ("time_zone", pa.string()),
    ]
)


def write_attributes(df: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    df.write_parquet(
        tmp, compression="zstd", statistics=True, row_group_size=snapshot.ROW_GROUP
    )
    os.replace(tmp, path)


def write_contacts(
    path: Path,
    parts: Iterable[pa.Table],
) -> None:
    """Stream contact tables (already sealed) into one Parquet file, atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    with pq.ParquetWriter(tmp, CONTACTS_SCHEMA, compression="zstd") as writer:
        for part in parts:
            writer.write_table(part.cast(CONTACTS_SCHEMA), row_group_size=snapshot.ROW_GROUP)
    os.replace(tmp, path)


def seal_contacts(
    ids: np.ndarray,
    national: np.ndarray,
    cc: np.ndarray,
    territory: np.ndarray,
    progress: Progress = _noop,
    workers: int | None = None,
) -> Iterable[pa.Table]:
    """Encrypt and HMAC numbers chunk by chunk on every core, yielding contact tables in order."""
    vault_key, hmac_key = keys.vault_key(), keys.hmac_key()
    workers = workers or min(os.cpu_count() or 1, 4)
    jobs = (
        (vault_key, hmac_key, ids[i : i + CHUNK], national[i : i + CHUNK], cc[i : i + CHUNK])
        for i in range(0, len(ids), CHUNK)
    )
    tz = {code: t.time_zone for code, t in phones.TERRITORIES.items()}
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        done = 0
        for start, (cts, macs) in zip(
            range(0, len(ids), CHUNK), pool.map(seal_chunk, jobs), strict=True
        ):
            terr = territory[start : start + CHUNK]
            yield pa.table(
                {
                    "prospect_id": pa.array(ids[start : start + CHUNK]),
                    "phone_enc": cts,
                    "phone_hmac": macs,
                    "territory": pa.array(terr),
                    "time_zone": pa.array([tz[t] for t in terr.tolist()]),
                }
            )
            done += len(terr)
            progress("encrypting contacts", done, len(ids))


def generate_snapshot(
    root: Path, rows: int, seed: int, as_of: date, progress: Progress = _noop
) -> snapshot.Snapshot:
    """Write the next version under `root` from scratch and make it current."""
    if rows < 1:
        raise ValueError("--rows must be at least 1")
    version = snapshot.next_version(root)
    progress("sampling attributes", 0, rows)
    df = attributes(rows, seed, as_of)
    territory = df["_territory"].to_numpy()
    df = df.drop("_territory")
    progress("sampling attributes", rows, rows)
    national, cc = numbers(np.random.default_rng([seed, 3]), territory)
    ids = df["prospect_id"].to_numpy()
    with snapshot.building(root, version) as tmp:
        write_attributes(df, tmp / snapshot.ATTRIBUTES)
        del df
        write_contacts(tmp / snapshot.CONTACTS, seal_contacts(ids, national, cc, territory, progress))
        snapshot.write_manifest(tmp, manifest(
            version, rows, seed, as_of, territory,
            interests=reference.interests()["code"].to_list(),  # bit order of `interests`
        ))
    snapshot.set_current(root, version)
    return snapshot.load(root, version)


def manifest(
    version: str, rows: int, seed: int, as_of: date, territory: np.ndarray, **extra: Any
) -> dict[str, Any]:
    terr, counts = np.unique(territory, return_counts=True)
    return {
        "version": version,
        "created_at": clock.now().isoformat(timespec="seconds"),
        "as_of": as_of.isoformat(),
        "rows": rows,
        "schema_version": snapshot.SCHEMA_VERSION,
        "seed": seed,
        "synthetic": True,
        "generator": "datasets.generate (INSEE-derived distributions, see reference/SOURCES.md)",
        "territories": {str(t): int(c) for t, c in zip(terr, counts, strict=True)},
        **extra,
    }
