from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from datasets import snapshot
from datasets.build import generate_snapshot
from datasets.refresh import PROOFS, Purge, refresh_snapshot
from kit.errors import ConfigurationError
from tests.conftest import AS_OF


def test_refresh_writes_the_next_version_with_churn(tmp_path: Path) -> None:
    root = tmp_path / "base"
    first = generate_snapshot(root, 40_000, 3, AS_OF)
    second = refresh_snapshot(root, 0.05, AS_OF)
    assert second.version == "v0002"
    assert snapshot.current(root).version == "v0002"
    assert second.manifest["parent"] == "v0001"
    ch = second.manifest["changes"]
    assert ch == {
        "added": 2_000,
        "removed": 2_000,
        "moved": 1_000,
        "consent_withdrawn": 500,
        "new_interactions": 4_000,
    }
    a1, a2 = pl.read_parquet(first.attributes), pl.read_parquet(second.attributes)
    ids1, ids2 = set(a1["prospect_id"].to_list()), set(a2["prospect_id"].to_list())
    assert len(ids1 - ids2) == 2_000
    assert len(ids2 - ids1) == 2_000
    assert a2.height == second.manifest["rows"] == 40_000
    # The first snapshot is untouched: a reader of v0001 still sees v0001.
    assert pl.read_parquet(first.attributes).equals(a1)
    both = a1.join(a2, on="prospect_id", suffix="_2")
    moved = both.filter(pl.col("commune").cast(pl.String) != pl.col("commune_2").cast(pl.String))
    assert 900 <= moved.height <= 1_000  # a few movers draw their own commune again
    withdrawn = both.filter(pl.col("opt_in") & ~pl.col("opt_in_2"))
    assert withdrawn.height >= 450
    assert a2["department"].cast(pl.String).is_sorted()


def test_refreshed_contacts_unique_and_aligned(tmp_path: Path) -> None:
    root = tmp_path / "base"
    generate_snapshot(root, 30_000, 5, AS_OF)
    refresh_snapshot(root, 0.1, AS_OF)
    third = refresh_snapshot(root, 0.1, AS_OF)
    contacts = pq.read_table(third.contacts)
    macs = contacts.column("phone_hmac").to_pylist()
    assert len(set(macs)) == len(macs) == 30_000
    ids = set(contacts.column("prospect_id").to_pylist())
    assert ids == set(pl.read_parquet(third.attributes)["prospect_id"].to_list())
    assert sum(third.manifest["territories"].values()) == 30_000


def test_a_refresh_without_churn_writes_the_same_people(tmp_path: Path) -> None:
    """`rental base refresh --churn 0`: no newcomer, no leaver; only interactions move."""
    root = tmp_path / "base"
    first = generate_snapshot(root, 20_000, 4, AS_OF)
    second = refresh_snapshot(root, 0.0, AS_OF)
    assert second.manifest["rows"] == 20_000
    assert second.manifest["changes"]["added"] == second.manifest["changes"]["removed"] == 0
    a1, a2 = pl.read_parquet(first.attributes), pl.read_parquet(second.attributes)
    assert a2.schema == a1.schema
    assert set(a2["prospect_id"].to_list()) == set(a1["prospect_id"].to_list())
    assert pq.read_table(second.contacts).num_rows == 20_000


def test_consent_proofs_of_leavers_are_kept_then_purged(tmp_path: Path) -> None:
    """Who leaves the base leaves their consent proof (reference, date, source) behind; a
    refresh past its retention purges it, and the manifest counts both."""
    root = tmp_path / "base"
    first = generate_snapshot(root, 20_000, 6, AS_OF)
    keep_all = date(1900, 1, 1)  # no one is inactive for this test
    second = refresh_snapshot(root, 0.05, AS_OF, purge=Purge(keep_all))
    assert second.manifest["changes"]["proofs_archived"] == 1_000
    assert second.manifest["changes"]["proofs_purged"] == 0
    assert PROOFS in second.manifest["checksums"]  # carried to other hosts with the snapshot
    snapshot.verify(second)
    proofs = pl.read_parquet(second.path / PROOFS)
    assert proofs.columns == ["proof_ref", "consent_date", "consent_source", "left_on", "why"]
    a1, a2 = pl.read_parquet(first.attributes), pl.read_parquet(second.attributes)
    left = a1.filter(~pl.col("prospect_id").is_in(a2["prospect_id"].implode()))
    assert set(proofs["proof_ref"].to_list()) == set(left["proof_ref"].to_list())
    assert proofs["left_on"].unique().to_list() == [AS_OF]

    later = AS_OF.replace(year=AS_OF.year + 6)
    purge = Purge(keep_all, proofs_left_before=AS_OF + timedelta(days=1))
    third = refresh_snapshot(root, 0.05, later, purge=purge)
    assert third.manifest["changes"]["proofs_purged"] == 1_000
    kept = pl.read_parquet(third.path / PROOFS)
    assert kept.height == third.manifest["changes"]["proofs_archived"] == 1_000
    assert kept["left_on"].unique().to_list() == [later]
    assert not set(kept["proof_ref"].to_list()) & set(proofs["proof_ref"].to_list())


def test_prune_keeps_the_current_version_and_those_before_it(tmp_path: Path) -> None:
    """A refresh keeps the version before (hosts still on it read it); `rental base prune`
    removes the older ones, never the current one nor one being made after it."""
    root = tmp_path / "base"
    generate_snapshot(root, 20_000, 3, AS_OF)
    for _ in range(3):
        refresh_snapshot(root, 0.01, AS_OF)
    snapshot.set_current(root, "v0003")  # v0004 exists: a refresh not yet made current
    assert snapshot.prune(root, 2) == ["v0001"]
    assert sorted(p.name for p in root.glob("v[0-9]*")) == ["v0002", "v0003", "v0004"]
    assert snapshot.prune(root, 1) == ["v0002"]
    assert snapshot.current(root).version == "v0003"
    with pytest.raises(ConfigurationError, match="keep at least the current version"):
        snapshot.prune(root, 0)
