"""The next version of a base: new prospects, removed ones, movers, withdrawn consents, activity.

Prospect ids and contact rows of people who stay are carried over unchanged (their ciphertexts
are not re-encrypted); new numbers are checked against every existing HMAC, so numbers stay
unique across the base. Deterministic for (seed of the base, new version number).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from datasets import reference, snapshot
from datasets.build import manifest, seal_contacts, write_attributes, write_contacts
from datasets.generate import Progress, _noop, attributes, numbers, prospect_ids
from datasets.vault import hmac_numbers
from kit import keys


def _moves(rng: np.random.Generator, df: pl.DataFrame, movers: np.ndarray) -> pl.DataFrame:
    """Movers draw a new commune by population within their own territory (their number's)."""
    com = reference.communes().join(
        reference.departments().select(
            pl.col("code").alias("department"), pl.col("region_code").alias("region"), "territory"
        ),
        on="department",
    )
    terr_of_dep = dict(zip(reference.departments()["code"], reference.departments()["territory"],
                           strict=True))
    moved = df.filter(pl.col("prospect_id").is_in(movers)).with_columns(
        pl.col("department").cast(pl.String).replace_strict(terr_of_dep).alias("_territory")
    )
    parts = []
    for terr, group in moved.group_by("_territory", maintain_order=True):
        pool = com.filter(pl.col("territory") == terr[0])
        w = pool["population"].to_numpy().astype(np.float64)
        pick = rng.choice(len(pool), size=len(group), p=w / w.sum())
        new = pool[pick]
        parts.append(group.with_columns(
            pl.Series("region", new["region"]), pl.Series("department", new["department"]),
            pl.Series("commune", new["insee"]),
            pl.Series("postcode", new["postcodes"].str.split("|").list.first()),
            pl.Series("lat", new["lat"]).cast(pl.Float32),
            pl.Series("lon", new["lon"]).cast(pl.Float32),
        ).drop("_territory"))
    if not parts:
        return df
    moved_new = pl.concat(parts).select(df.columns).cast(dict(df.schema))
    return pl.concat([df.filter(~pl.col("prospect_id").is_in(movers)), moved_new])


def refresh_snapshot(root: Path, churn: float, as_of: date,
                     progress: Progress = _noop) -> snapshot.Snapshot:
    if not 0 <= churn <= 0.5:
        raise ValueError("--churn must be between 0 and 0.5")
    cur = snapshot.current(root)
    version = snapshot.next_version(root)
    seed = int(cur.manifest["seed"])
    rng = np.random.default_rng([seed, snapshot.version_number(version), 7])
    progress("reading current snapshot", 0, 1)
    df = pl.read_parquet(cur.attributes)
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
    recent = pl.Series(np.datetime64(as_of, "D") - rng.integers(0, 90, df.height).astype(
        "timedelta64[D]"))
    df = df.with_columns(
        pl.when(pl.col("prospect_id").is_in(withdrawn)).then(False).otherwise(pl.col("opt_in"))
        .alias("opt_in"),
        pl.when(pl.col("prospect_id").is_in(active)).then(recent)
        .otherwise(pl.col("last_interaction")).alias("last_interaction"),
    )

    progress("sampling new prospects", 0, n_added)
    new = attributes(n_added, seed * 1_000 + snapshot.version_number(version), as_of)
    new = new.with_columns(pl.Series("prospect_id", prospect_ids(rng, n_added, taken=ids)))
    territory = new["_territory"].to_numpy()
    new = new.drop("_territory").select(df.columns).cast(dict(df.schema))
    national, cc = _fresh_numbers(rng, territory, contacts.column("phone_hmac").to_pylist())
    merged = pl.concat([df, new]).sort(["department", "commune"], maintain_order=True)

    kept = contacts.filter(pl.Series(contacts.column("prospect_id").to_numpy()).is_in(
        removed).not_().to_arrow())
    new_ids = new["prospect_id"].to_numpy()
    with snapshot.building(root, version) as tmp:
        write_attributes(merged, tmp / snapshot.ATTRIBUTES)
        parts = [kept, *seal_contacts(new_ids, national, cc, territory, progress)]
        write_contacts(tmp / snapshot.CONTACTS, parts)
        all_terr = np.concatenate([kept.column("territory").to_numpy(zero_copy_only=False),
                                   territory])
        snapshot.write_manifest(tmp, manifest(
            version, merged.height, seed, as_of, all_terr,
            interests=cur.manifest["interests"], parent=cur.version,
            changes={"added": n_added, "removed": n_removed, "moved": n_moved,
                     "consent_withdrawn": n_withdrawn, "new_interactions": n_active},
        ))
    snapshot.set_current(root, version)
    return snapshot.load(root, version)


def _fresh_numbers(rng: np.random.Generator, territory: np.ndarray,
                   existing: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Numbers for new prospects, none of which the base already holds (checked by HMAC)."""
    key = keys.hmac_key()
    taken = pl.Series(existing, dtype=pl.Binary)
    national, cc = numbers(rng, territory)
    while True:
        macs = hmac_numbers(key, [f"+{c}{n}".encode() for c, n in zip(cc, national, strict=True)])
        clash = pl.Series(macs, dtype=pl.Binary).is_in(taken).to_numpy()
        if not clash.any():
            return national, cc
        again, _ = numbers(rng, territory[clash])
        national[clash] = again
