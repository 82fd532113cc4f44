"""The next version of a base: new prospects, removed ones, movers, withdrawn consents, activity.

Prospect ids and contact rows of people who stay are carried over unchanged (their ciphertexts
are not re-encrypted); new numbers are checked against every existing HMAC, so numbers stay
unique across the base. Deterministic for (seed of the base, new version number).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from datasets import reference, snapshot
from datasets.build import (
    contact_tables,
    manifest,
    sealing_pool,
    start_sealing,
    territory_counts,
    write_attributes,
    write_contacts,
)
from datasets.generate import (
    Plan,
    Progress,
    _noop,
    attributes,
    numbers,
    plan,
    prospect_ids,
)


def _moves(rng: np.random.Generator, df: pl.DataFrame, movers: np.ndarray) -> pl.DataFrame:
    """Movers draw a new commune by population within their own territory (their number's)."""
    com = reference.communes().join(
        reference.departments().select(
            pl.col("code").alias("department"), pl.col("region_code").alias("region"), "territory"
        ),
        on="department",
    )
    terr_of_dep = dict(
        zip(reference.departments()["code"], reference.departments()["territory"], strict=True)
    )
    moved = df.filter(pl.col("prospect_id").is_in(movers)).with_columns(
        pl.col("department").cast(pl.String).replace_strict(terr_of_dep).alias("_territory")
    )
    parts = []
    for terr, group in moved.group_by("_territory", maintain_order=True):
        pool = com.filter(pl.col("territory") == terr[0])
        w = pool["population"].to_numpy().astype(np.float64)
        pick = rng.choice(len(pool), size=len(group), p=w / w.sum())
        new = pool[pick]
        parts.append(
            group.with_columns(
                pl.Series("region", new["region"]),
                pl.Series("department", new["department"]),
                pl.Series("commune", new["insee"]),
                pl.Series("postcode", new["postcodes"].str.split("|").list.first()),
                pl.Series("lat", new["lat"]).cast(pl.Float32),
                pl.Series("lon", new["lon"]).cast(pl.Float32),
            ).drop("_territory")
        )
    if not parts:
        return df
    moved_new = pl.concat(parts).select(df.columns).cast(df.schema)
    return pl.concat([df.filter(~pl.col("prospect_id").is_in(movers)), moved_new])


# The consent proofs of the people who left the base (reference, date, source; no number, no
# attributes, no prospect id), kept beside each snapshot for as long as the law needs them.
PROOFS = snapshot.PROOFS


@dataclass(frozen=True)
class Purge:
    """Who leaves the base at this refresh besides the churn: prospects with no interaction
    since `inactive_before` (the CNIL's 3 years for prospecting), and those who asked for
    erasure (their numbers' HMACs; their opt-out stays on the suppression list). The consent
    proofs of people who left before `proofs_left_before` (5 years: the limitation period) go."""

    inactive_before: date
    erase: Collection[bytes] = field(default_factory=frozenset)
    proofs_left_before: date | None = None


def _proofs(
    cur: snapshot.Snapshot,
    before: pl.DataFrame,
    leavers: dict[str, np.ndarray],
    as_of: date,
    left_before: date | None,
) -> tuple[pl.DataFrame, int, int]:
    """(the proofs to keep beside the new version, how many new, how many purged): the
    current version's, less those of people who left before `left_before`, plus this
    refresh's leavers', each with the day and why they left."""
    parts = []
    added = purged = 0
    path = cur.path / PROOFS
    if path.exists():  # a generated base has none yet
        old = pl.read_parquet(path)
        kept = old if left_before is None else old.filter(pl.col("left_on") >= left_before)
        purged = old.height - kept.height
        parts.append(kept)
    for why, ids in leavers.items():
        left = before.filter(pl.col("prospect_id").is_in(pl.Series(ids).implode()))
        added += left.height
        parts.append(
            left.select(
                "proof_ref",
                "consent_date",
                pl.col("consent_source").cast(pl.String),
                pl.lit(as_of, dtype=pl.Date).alias("left_on"),
                pl.lit(why).alias("why"),
            )
        )
    return pl.concat(parts), added, purged


def _purged(df: pl.DataFrame, contacts: pa.Table, purge: Purge) -> tuple[np.ndarray, int, int]:
    """(ids to drop, how many for retention, how many erased); someone both is counted once,
    as erased."""
    macs = pl.DataFrame(contacts.select(["prospect_id", "phone_hmac"]))
    erased = macs.filter(
        pl.col("phone_hmac").cast(pl.Binary).is_in(pl.Series(list(purge.erase), dtype=pl.Binary))
    )["prospect_id"]
    erased = erased.filter(erased.is_in(df["prospect_id"]))
    stale = df.filter(
        (pl.col("last_interaction") < purge.inactive_before) & ~pl.col("prospect_id").is_in(erased)
    )["prospect_id"]
    return np.concatenate([erased.to_numpy(), stale.to_numpy()]), stale.len(), erased.len()


def refresh_snapshot(
    root: Path, churn: float, as_of: date, progress: Progress = _noop, purge: Purge | None = None
) -> snapshot.Snapshot:
    if not 0 <= churn <= 0.5:
        raise ValueError("--churn must be between 0 and 0.5")
    cur = snapshot.current(root)
    version = snapshot.next_version(root)
    seed = int(cur.manifest["seed"])
    rng = np.random.default_rng([seed, snapshot.version_number(version), 7])
    progress("reading current snapshot", 0, 1)
    df = pl.read_parquet(cur.attributes)
    before = df  # the leavers' consent proofs are read from it at the end
    contacts = pq.read_table(cur.contacts)
    n = df.height
    ids = df["prospect_id"].to_numpy()

    n_removed, n_added = int(n * churn), int(n * churn)
    n_moved, n_withdrawn, n_active = int(n * churn / 2), int(n * churn / 4), int(n * 0.10)
    removed = rng.choice(ids, size=n_removed, replace=False)
    stay = ids[~np.isin(ids, removed)]
    movers = rng.choice(stay, size=n_moved, replace=False)
    withdrawn = rng.choice(stay, size=n_withdrawn, replace=False)
    active = rng.choice(stay, size=n_active, replace=False)

    df = df.filter(~pl.col("prospect_id").is_in(removed))
    df = _moves(rng, df, movers)
    recent = pl.Series(
        np.datetime64(as_of, "D") - rng.integers(0, 90, df.height).astype("timedelta64[D]")
    )
    df = df.with_columns(
        pl.when(pl.col("prospect_id").is_in(withdrawn))
        .then(False)
        .otherwise(pl.col("opt_in"))
        .alias("opt_in"),
        pl.when(pl.col("prospect_id").is_in(active))
        .then(recent)
        .otherwise(pl.col("last_interaction"))
        .alias("last_interaction"),
    )
    purged: dict[str, int] = {}
    leavers = {"removed": removed}
    if purge is not None:  # after this refresh's interactions: a fresh one keeps a prospect
        dropped, purged["retention_expired"], purged["erased"] = _purged(df, contacts, purge)
        df = df.filter(~pl.col("prospect_id").is_in(dropped))
        removed = np.concatenate([removed, dropped])
        leavers["erased"] = dropped[: purged["erased"]]
        leavers["retention_expired"] = dropped[purged["erased"] :]
    proofs, n_archived, n_proofs_purged = _proofs(
        cur, before, leavers, as_of, purge.proofs_left_before if purge else None
    )
    if purge is not None:
        purged |= {"proofs_archived": n_archived, "proofs_purged": n_proofs_purged}

    progress("sampling new prospects", 0, n_added)
    # New people: ids and numbers continue the base's counters, so they can never collide
    # with anyone the base holds or ever held.
    counters = cur.manifest["counters"]
    new_seed = seed * 1_000 + snapshot.version_number(version)
    drawn = plan(n_added, new_seed)
    first_id = int(counters["prospect_id"])
    draft = Plan(prospect_ids(seed, first_id, n_added), drawn.commune, drawn.territory)
    new = attributes(draft, new_seed, as_of).select(df.columns).cast(df.schema)
    national, cc, number_counters = numbers(seed, draft.territory, counters["numbers"])
    if purge is not None:  # newcomers whose last interaction is already too old stay out
        fresh = new["last_interaction"] >= purge.inactive_before
        purged["retention_expired"] += new.height - int(fresh.sum())
        new = new.filter(fresh)
        mask = np.isin(draft.ids, new["prospect_id"].to_numpy())
        draft = Plan(draft.ids[mask], draft.commune[mask], draft.territory[mask])
        national, cc = national[mask], cc[mask]
    merged = pl.concat([df, new]).sort(
        pl.col("department").cast(pl.String),
        pl.col("commune").cast(pl.String),
        maintain_order=True,
    )

    keep = ~pl.Series(contacts.column("prospect_id").to_numpy()).is_in(removed)
    kept = contacts.filter(keep.to_arrow())
    kept_terr = kept.column("territory").to_pylist()
    counts = territory_counts(draft.territory)
    for t in kept_terr:
        counts[t] = counts.get(t, 0) + 1
    with snapshot.building(root, version) as tmp, sealing_pool() as pool:
        futures = start_sealing(pool, draft.ids, national, cc)
        write_attributes(merged, tmp / snapshot.ATTRIBUTES)
        proofs.write_parquet(tmp / PROOFS, compression="zstd")
        parts = [kept, *contact_tables(futures, draft.ids, draft.territory, progress)]
        write_contacts(tmp / snapshot.CONTACTS, parts)
        snapshot.write_manifest(
            tmp,
            manifest(
                version,
                merged.height,
                seed,
                as_of,
                dict(sorted(counts.items())),
                interests=cur.manifest["interests"],
                counters={"prospect_id": first_id + n_added, "numbers": number_counters},
                parent=cur.version,
                changes={
                    "added": n_added,  # drawn; those already inactive count as expired
                    "removed": n_removed,
                    "moved": n_moved,
                    "consent_withdrawn": n_withdrawn,
                    "new_interactions": n_active,
                    **purged,
                },
            ),
        )
    snapshot.set_current(root, version)
    return snapshot.load(root, version)
