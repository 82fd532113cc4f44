"""The prepared base: a snapshot's attributes as the engine serves them, kept on local disk.

Preparing a snapshot reads its Parquet file, builds the vocabularies (ENUM types, small integer
codes), packs the profile byte and sorts the ids: seconds at 10M, the same work in every process.
The first process to open a snapshot does it once and writes the result under
RENTAL_HOME/cache/base/: a DuckDB database file holding the `attributes` table (without the
eligibility bit, the cells of a day or the secret sample flags: the engine makes those while it
copies the table into memory at its first eligibility pass), the ids' sort order as .npy files
(memory-mapped: the processes of a home share their pages) and meta.json (vocabularies, key,
the snapshot files' sizes and times). Later processes attach the database read-only (any number
at once) and never read the Parquet file.

An entry is keyed by the snapshot's directory, version and manifest (whose checksums name the
files' contents), DuckDB's version and FORMAT. It is built only from files whose checksums were
just verified, and used only while those files keep the size and modification time they had: a
snapshot replaced, rewritten, truncated or restored, another manifest, or an entry that does not
open is rebuilt, never used. It holds what attributes.parquet holds (ids and targeting
attributes, no number: numbers are read from the snapshot's contacts file, encrypted), readable
by the owner only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from datasets import reference
from datasets import snapshot as snap
from kit.errors import ConfigurationError
from kit.settings import get_settings
from segmentation.compiler import PROFILE_BITS, profile_sql

FORMAT = 1  # bump when what an entry holds changes: older entries are then rebuilt
DATABASE = "attributes.duckdb"
IDS = "ids_sorted.npy"
ROWIDS = "rowid_of_sorted.npy"
META = "meta.json"
# Small vocabularies are stored as integer codes (tested with one bitmask, see compiler._in);
# the large geographic ones as ENUMs (their IN lists prune row groups: rows are sorted by them).
CODED_COLUMNS = ("sex", "csp", "region", "housing", "dwelling", "income")
ENUM_COLUMNS = ("department", "commune", "postcode")


@dataclass(frozen=True)
class Prepared:
    """An entry: `database` holds table `attributes`, in the snapshot's row order."""

    database: Path
    vocabulary: dict[str, list[str]]
    ids_sorted: np.ndarray  # the prospect ids, sorted (read-only, memory-mapped)
    rowid_of_sorted: np.ndarray  # the row of each of them


def root() -> Path:
    return get_settings().home / "cache" / "base"


def prepared(
    snapshot: snap.Snapshot, threads: int = 2, memory_limit: str | None = None
) -> Prepared:
    """The snapshot's entry, built first when there is none or it cannot be used."""
    directory = root() / _key(snapshot)
    found = _open(directory, snapshot)
    if found is not None:
        return found
    shutil.rmtree(directory, ignore_errors=True)  # stale or damaged: never used
    _build(snapshot, directory, threads, memory_limit)
    found = _open(directory, snapshot)
    if found is None:  # pragma: no cover - a file changed while it was being prepared
        raise ConfigurationError(
            f"snapshot {snapshot.version} changed while it was being loaded: start again"
        )
    return found


def discard(entry: Prepared) -> None:
    """Remove an entry that does not open (the next `prepared` builds it again)."""
    shutil.rmtree(entry.database.parent, ignore_errors=True)


def _key(snapshot: snap.Snapshot) -> str:
    manifest = json.dumps(snapshot.manifest, sort_keys=True)
    text = f"{FORMAT}|{duckdb.__version__}|{snapshot.path.resolve()}|{manifest}"
    return f"{snapshot.version}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def _stamps(snapshot: snap.Snapshot) -> dict[str, list[int]]:
    """Size and modification time of each snapshot file the engine reads."""
    out = {}
    for path in (snapshot.attributes, snapshot.contacts):
        st = path.stat()
        out[path.name] = [st.st_size, st.st_mtime_ns]
    return out


def _open(directory: Path, snapshot: snap.Snapshot) -> Prepared | None:
    """The entry in `directory` if it is whole and still matches the snapshot's files."""
    try:
        meta = json.loads((directory / META).read_text())
        if meta["key"] != directory.name or meta["files"] != _stamps(snapshot):
            return None
        ids = np.load(directory / IDS, mmap_mode="r")
        rowids = np.load(directory / ROWIDS, mmap_mode="r")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    rows = int(meta["rows"])
    if ids.shape != (rows,) or rowids.shape != (rows,) or not (directory / DATABASE).is_file():
        return None
    return Prepared(directory / DATABASE, dict(meta["vocabulary"]), ids, rowids)


def _build(
    snapshot: snap.Snapshot, directory: Path, threads: int, memory_limit: str | None
) -> None:
    """Prepare the snapshot into a temporary directory renamed into place when whole."""
    stamps = _stamps(snapshot)
    snap.verify(snapshot)  # an entry is made of verified files only
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write the prepared base under {directory.parent} ({exc.strerror}): make "
            "RENTAL_HOME writable"
        ) from None
    try:
        config: dict[str, Any] = {"threads": threads}
        if memory_limit:
            config["memory_limit"] = memory_limit
        con = duckdb.connect(str(tmp / DATABASE), config=config)
        try:
            vocabulary = _load(con, snapshot)
            ids = con.sql("SELECT prospect_id FROM attributes ORDER BY rowid").fetchnumpy()
            con.execute("CHECKPOINT")
        finally:
            con.close()
        ids_array = np.asarray(ids["prospect_id"], dtype=np.int64)
        order = np.argsort(ids_array, kind="stable")
        np.save(tmp / IDS, ids_array[order])
        np.save(tmp / ROWIDS, order.astype(np.int64))
        meta = {"key": directory.name, "snapshot": str(snapshot.path.resolve()),
                "rows": len(ids_array), "files": stamps, "vocabulary": vocabulary}  # fmt: skip
        (tmp / META).write_text(json.dumps(meta))
        if _stamps(snapshot) != stamps:  # replaced while it was read: not this snapshot
            return
        for path in tmp.iterdir():  # on disk before the rename makes the entry visible
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
        with contextlib.suppress(OSError):  # another process finished the same entry first
            os.rename(tmp, directory)
        _prune(directory, str(snapshot.path.resolve()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load(con: duckdb.DuckDBPyConnection, snapshot: snap.Snapshot) -> dict[str, list[str]]:
    """Create table `attributes` from the snapshot's Parquet file; returns the vocabularies."""
    path = str(snapshot.attributes)
    casts = []
    vocabulary: dict[str, list[str]] = {}
    for column in ENUM_COLUMNS + CODED_COLUMNS:
        present = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT CAST({column} AS VARCHAR) FROM read_parquet(?)",  # noqa: S608
                [path],
            ).fetchall()
        ]
        values = _vocabulary(column)
        values += sorted(set(present) - set(values))
        vocabulary[column] = values
        con.execute(f"CREATE TYPE {column}_t AS ENUM (SELECT unnest(?::VARCHAR[]))", [values])
        enum = f"CAST({column} AS VARCHAR)::{column}_t"
        coded = column in CODED_COLUMNS
        casts.append(f"enum_code({enum})::UTINYINT AS {column}" if coded else f"{enum} AS {column}")
    for name, expected in PROFILE_BITS.items():
        if name in vocabulary and vocabulary[name] != list(expected):
            raise ConfigurationError(
                f"snapshot {snapshot.version}: {name} has values "
                f"{vocabulary[name]}, the profile byte expects {list(expected)}"
            )
    # Interests are a bitmask: 15 fit a SMALLINT (half the bytes to scan), more need more.
    interest_type = "SMALLINT" if len(snapshot.manifest["interests"]) <= 15 else "BIGINT"
    # Only what counts read is kept: housing, dwelling and children live in the profile byte
    # alone (memory is what lets a 50M base stay in RAM). No one is eligible yet.
    con.execute(
        "CREATE TABLE attributes AS SELECT * EXCLUDE (housing, dwelling, children), "  # noqa: S608 (names are ours)
        f"CAST({profile_sql({c: c for c in PROFILE_BITS}, 'FALSE')} AS UTINYINT) AS profile, "
        "CAST(0 AS USMALLINT) AS cell FROM (SELECT prospect_id, birth_date, lat, lon, "
        f"children, interests::{interest_type} AS interests, opt_in, last_interaction, "
        + ", ".join(casts)
        + " FROM read_parquet(?))",
        [path],
    )
    return vocabulary


def _vocabulary(column: str) -> list[str]:
    com = reference.communes()
    deps = reference.departments()
    fixed: dict[str, Any] = {
        "sex": ["F", "M"],
        "csp": [str(i) for i in range(1, 9)],
        "region": deps["region_code"].unique().sort().to_list(),
        "department": deps["code"].sort().to_list(),
        "commune": com["insee"].sort().to_list(),
        "postcode": com["postcodes"].str.split("|").explode().unique().sort().to_list(),
        "housing": ["owner", "tenant"],
        "dwelling": ["house", "flat"],
        "income": reference.income()["code"].sort().to_list(),
        "consent_source": reference.consent_sources()["code"].to_list(),
    }
    return list(fixed[column])


def _prune(kept: Path, snapshot: str) -> None:
    """Remove the other entries of this snapshot directory (another manifest or format) and
    those of snapshot directories that no longer exist (a process still serving one keeps its
    open files)."""
    for entry in kept.parent.iterdir():
        if entry.name.startswith(".") or entry == kept:
            continue  # being built, or the one just made
        try:
            made_of = json.loads((entry / META).read_text())["snapshot"]
        except (OSError, ValueError, KeyError):
            continue
        if made_of == snapshot or not Path(made_of).exists():
            shutil.rmtree(entry, ignore_errors=True)
