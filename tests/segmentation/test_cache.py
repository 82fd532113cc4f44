"""The prepared base (segmentation/cache.py): a second engine on the same snapshot starts from it
and counts exactly as the first; another snapshot version, a snapshot file changed in place or a
damaged entry is prepared again, never used; the secret sample's flags computed while copying
are PersonSample's."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pytest

from datasets import snapshot
from kit.errors import ConfigurationError
from segmentation import cache
from segmentation.criteria import Criteria
from segmentation.engine import CountResult, Engine
from segmentation.privacy import SAMPLE_MACROS, PersonSample

TODAY = date(2026, 11, 26)
NONE = np.empty(0, dtype=np.int64)
BROAD = Criteria.model_validate({"sex": ["F"], "age": {"min": 25, "max": 45}})
SCANNED = Criteria.model_validate({"interests": ["travel"], "csp": ["3"]})


def counted(base: snapshot.Snapshot, excluded: np.ndarray = NONE) -> list[CountResult]:
    engine = Engine(base)
    try:
        engine.sync_eligibility(TODAY, 3, excluded)
        return [engine.count(c, TODAY, ("region", "department", "csp")) for c in (BROAD, SCANNED)]
    finally:
        engine.close()


def entries() -> dict[str, float]:
    """The prepared entries of this home, by name, with their database's modification time."""
    root = cache.root()
    if not root.exists():
        return {}
    return {p.name: (p / cache.DATABASE).stat().st_mtime_ns for p in root.iterdir()}


def copy_of(base: snapshot.Snapshot, root: Path, version: str) -> snapshot.Snapshot:
    (root / version).mkdir(parents=True)
    for name in (snapshot.ATTRIBUTES, snapshot.CONTACTS, snapshot.MANIFEST):
        shutil.copy2(base.path / name, root / version / name)
    snapshot.set_current(root, version)
    return snapshot.current(root)


def test_a_second_engine_starts_from_the_prepared_base_and_counts_the_same(
    base: snapshot.Snapshot,
) -> None:
    rng = np.random.default_rng(3)
    ids = ids_of(base)
    excluded = np.sort(rng.choice(ids, 500, replace=False))
    first = counted(base, excluded)
    made = entries()
    assert len(made) == 1
    second = counted(base, excluded)
    assert entries() == made  # used as it was, not prepared again
    assert second == first
    assert first[0].total > 0
    assert first[1].total > 0
    # the excluded are out of the copy made from the prepared base
    assert counted(base)[0].total > first[0].total


def ids_of(base: snapshot.Snapshot) -> np.ndarray:
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT prospect_id FROM read_parquet(?)", [str(base.attributes)]
        ).fetchnumpy()
    finally:
        con.close()
    return np.asarray(rows["prospect_id"], dtype=np.int64)


def test_another_snapshot_version_is_prepared_anew(base: snapshot.Snapshot, tmp_path: Path) -> None:
    want = counted(base)
    before = entries()
    other = copy_of(base, tmp_path / "base", "v0002")
    assert counted(other) == want
    after = entries()
    assert set(before) < set(after)
    assert any(name.startswith("v0002-") for name in set(after) - set(before))


def test_a_snapshot_file_changed_in_place_or_a_damaged_entry_is_prepared_again(
    base: snapshot.Snapshot, tmp_path: Path
) -> None:
    mine = copy_of(base, tmp_path / "base", base.version)
    want = counted(mine)
    ((name, made),) = entries().items()
    # the same bytes written again (a restore): the entry is not trusted, the files are checked
    st = mine.attributes.stat()
    os.utime(mine.attributes, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert counted(mine) == want
    ((again, remade),) = entries().items()
    assert again == name
    assert remade != made
    # a truncated database file
    database = cache.root() / name / cache.DATABASE
    with database.open("r+b") as fh:
        fh.truncate(4096)
    assert counted(mine) == want
    assert database.stat().st_size > 4096
    # a snapshot file altered in place is refused, not served from the old entry
    with mine.contacts.open("r+b") as fh:
        fh.seek(100)
        fh.write(b"\0\0\0\0")
    with pytest.raises(ConfigurationError, match="does not match its manifest checksum"):
        Engine(mine)


def test_the_sample_flags_computed_in_sql_are_person_samples() -> None:
    rng = np.random.default_rng(7)
    ids = np.concatenate(
        [rng.integers(0, 2**62, 20_000, dtype=np.int64), np.array([0, 1, 2**62 - 1, 2**63 - 1])]
    )
    con = duckdb.connect()
    for statement in SAMPLE_MACROS:
        con.execute(statement)
    con.execute("CREATE TABLE t AS SELECT unnest(?::BIGINT[]) AS id", [ids.tolist()])
    for sample in (PersonSample.of(b"s" * 32, 1 / 3.25), PersonSample.of(b"t" * 32, 1.0)):
        expr, params = sample.flags_sql("id")
        got = con.execute(f"SELECT {expr} AS w FROM t ORDER BY rowid", params).fetchnumpy()  # noqa: S608
        assert np.array_equal(np.asarray(got["w"]), sample.flags(ids))
    con.close()
