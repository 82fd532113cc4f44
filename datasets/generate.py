"""Vectorised generation of a realistic synthetic French prospect base.

Sampling follows the committed INSEE-derived tables (reference/): communes by population (hence
departments and regions, overseas included), age and sex jointly from the age pyramid, PCS group by
age band and sex, housing and children by age band adjusted for the size of the commune, income
band tilted by PCS group. Faker is not needed row by row: vocabularies are small tables.

Rows come out ordered by department then commune, the order in which geographic criteria prune
best, because communes are drawn as multinomial counts in that order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from datasets import phones, reference
from datasets.vault import encrypt_numbers, hmac_numbers

DAYS_PER_YEAR = 365.2425
INCOME_TILT = {"1": 1.0, "2": 1.15, "3": 1.7, "4": 1.25, "5": 0.85, "6": 0.8, "7": 1.0, "8": 0.7}
Progress = Callable[[str, int, int], None]


def _noop(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class Vocab:
    """Categorical columns are Enums: compact in memory, dictionary-encoded in Parquet."""

    sex = pl.Enum(["F", "M"])
    csp = pl.Enum([str(i) for i in range(1, 9)])
    housing = pl.Enum(["owner", "tenant"])
    dwelling = pl.Enum(["house", "flat"])


def _days_before(as_of: date, days: np.ndarray) -> np.ndarray:
    return np.datetime64(as_of, "D") - days.astype("timedelta64[D]")


def _geography(rng: np.random.Generator, n: int) -> pl.DataFrame:
    com = reference.communes().sort(["department", "insee"])
    weights = com["population"].to_numpy().astype(np.float64)
    counts = rng.multinomial(n, weights / weights.sum())
    idx = np.repeat(np.arange(len(com)), counts)
    # A commune with several postcodes (Paris, Marseille...) spreads its people over them.
    pcs = com["postcodes"].str.split("|")
    n_pc = pcs.list.len().to_numpy()[idx]
    pick = (rng.random(n) * n_pc).astype(np.int64)
    rows = com[idx].with_columns(pl.Series("pick", pick))
    rows = rows.with_columns(
        pl.col("postcodes").str.split("|").list.get(pl.col("pick")).alias("postcode")
    )
    dep = reference.departments().select(
        pl.col("code").alias("department"), pl.col("region_code").alias("region"), "territory"
    )
    return rows.join(dep, on="department", how="left", maintain_order="left").select(
        "region",
        "department",
        pl.col("insee").alias("commune"),
        "postcode",
        pl.col("lat").cast(pl.Float32),
        pl.col("lon").cast(pl.Float32),
        pl.col("population").alias("_commune_pop"),
        pl.col("territory").alias("_territory"),
    )


def _age_sex(rng: np.random.Generator, n: int, as_of: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tab = reference.age_sex().sort("age")
    ages = tab["age"].to_numpy()
    w = np.concatenate([tab["women"].to_numpy(), tab["men"].to_numpy()]).astype(np.float64)
    cell = rng.choice(len(w), size=n, p=w / w.sum())
    age = ages[cell % len(ages)].astype(np.int64)
    # "100" stands for 100 and over: spread that cell over 100-104.
    age = np.where(age >= 100, 100 + rng.integers(0, 5, n), age)
    is_f = cell < len(ages)
    days = np.floor((age + rng.random(n) * 0.997) * DAYS_PER_YEAR).astype(np.int64) + 1
    return age, is_f, _days_before(as_of, days)


def _band_index(age: np.ndarray) -> np.ndarray:
    edges = np.array([lo for _, lo, _ in reference.AGE_BANDS[1:]])
    return np.searchsorted(edges, age, side="right")


def _csp(rng: np.random.Generator, band: np.ndarray, is_f: np.ndarray) -> np.ndarray:
    tab = reference.pcs_by_age()
    labels = [b for b, _, _ in reference.AGE_BANDS]
    out = np.empty(len(band), dtype=np.int64)
    for row in tab.iter_rows(named=True):
        mask = (band == labels.index(row["age_band"])) & (is_f == (row["sex"] == "F"))
        p = np.array([row[f"pcs_{i}"] for i in range(1, 9)], dtype=np.float64)
        out[mask] = rng.choice(8, size=int(mask.sum()), p=p / p.sum()) + 1
    return out


def _household(
    rng: np.random.Generator, band: np.ndarray, commune_pop: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tab = reference.household()
    order = [b for b, _, _ in reference.AGE_BANDS]
    tab = tab.with_columns(pl.col("age_band").replace_strict(order, list(range(len(order)))))
    tab = tab.sort("age_band")
    owner_p = tab["owner"].to_numpy()[band]
    house_p = tab["house"].to_numpy()[band]
    child_p = tab["children"].to_numpy()[band]
    # Cities have more tenants and flats, villages more owners of houses (INSEE, Logement 2020).
    urban = np.select(
        [commune_pop >= 100_000, commune_pop >= 20_000, commune_pop < 2_000],
        [0.0, 1.0, 3.0],
        default=2.0,
    )
    owner_f = np.array([0.65, 0.85, 1.0, 1.18])[urban.astype(np.int64)]
    house_f = np.array([0.22, 0.7, 1.05, 1.55])[urban.astype(np.int64)]
    owner = rng.random(len(band)) < np.minimum(owner_p * owner_f, 0.95)
    house = rng.random(len(band)) < np.minimum(house_p * house_f, 0.97)
    children = rng.random(len(band)) < child_p
    return owner, house, children


def _income(rng: np.random.Generator, csp: np.ndarray) -> np.ndarray:
    tab = reference.income().sort("code")
    base = tab["share"].to_numpy().astype(np.float64)
    out = np.empty(len(csp), dtype=np.int64)
    rank = np.arange(len(base))
    for code, tilt in INCOME_TILT.items():
        mask = csp == int(code)
        p = base * tilt**rank
        out[mask] = rng.choice(len(base), size=int(mask.sum()), p=p / p.sum())
    return out


def _interests(
    rng: np.random.Generator, age: np.ndarray, is_f: np.ndarray
) -> np.ndarray:
    mask = np.zeros(len(age), dtype=np.int32)
    for bit, row in enumerate(reference.interests().iter_rows(named=True)):
        rate = np.full(len(age), float(row["base_rate"]))
        rate = np.where(is_f, rate * row["f_mult"], rate)
        rate = np.where(age < 35, rate * row["young_mult"], rate)
        rate = np.where(age >= 65, rate * row["senior_mult"], rate)
        mask |= (rng.random(len(age)) < np.minimum(rate, 0.95)).astype(np.int32) << bit
    return mask


def _consent(
    rng: np.random.Generator, n: int, as_of: date
) -> dict[str, Any]:
    src = reference.consent_sources()
    shares = src["share"].to_numpy().astype(np.float64)
    source = rng.choice(len(src), size=n, p=shares / shares.sum())
    age_days = rng.integers(30, int(6 * DAYS_PER_YEAR), n)
    consent_date = _days_before(as_of, age_days)
    # Last interaction: between consent and today, mostly recent; a share falls beyond 3 years.
    since = np.floor(age_days * rng.beta(1.0, 3.0, n)).astype(np.int64)
    last = _days_before(as_of, since)
    opt_in = rng.random(n) >= 0.03  # 3% withdrew their SMS consent since collection
    proof = rng.integers(0, 10**8, n)
    return {
        "opt_in": opt_in,
        "consent_date": consent_date,
        "consent_source": source,
        "proof_no": proof,
        "last_interaction": last,
    }


def attributes(n: int, seed: int, as_of: date) -> pl.DataFrame:
    """`n` prospects' targeting attributes, ordered by department and commune."""
    rng = np.random.default_rng([seed, 1])
    geo = _geography(rng, n)
    age, is_f, birth = _age_sex(rng, n, as_of)
    band = _band_index(age)
    csp = _csp(rng, band, is_f)
    owner, house, children = _household(rng, band, geo["_commune_pop"].to_numpy())
    income = _income(rng, csp)
    interests = _interests(rng, age, is_f)
    consent = _consent(rng, n, as_of)
    ids = prospect_ids(np.random.default_rng([seed, 2]), n)
    src_codes = reference.consent_sources()["code"].to_list()
    inc_codes = reference.income().sort("code")["code"].to_list()
    df = pl.DataFrame(
        {
            "prospect_id": ids,
            "sex": pl.Series(np.where(is_f, "F", "M")).cast(Vocab.sex),
            "birth_date": birth,
            "csp": pl.Series(csp).cast(pl.String).cast(Vocab.csp),
        }
    ).hstack(geo.drop("_commune_pop"))
    df = df.with_columns(
        pl.Series("housing", np.where(owner, "owner", "tenant")).cast(Vocab.housing),
        pl.Series("dwelling", np.where(house, "house", "flat")).cast(Vocab.dwelling),
        pl.Series("children", children),
        pl.Series("income", np.array(inc_codes)[income]).cast(pl.Enum(inc_codes)),
        pl.Series("interests", interests),
        pl.Series("opt_in", consent["opt_in"]),
        pl.Series("consent_date", consent["consent_date"]),
        pl.Series("consent_source", np.array(src_codes)[consent["consent_source"]]).cast(
            pl.Enum(src_codes)
        ),
        pl.Series("last_interaction", consent["last_interaction"]),
        pl.Series("_proof_no", consent["proof_no"]),
    )
    return df.with_columns(
        pl.concat_str(
            pl.lit("PRF-"),
            pl.col("consent_date").dt.strftime("%Y%m%d"),
            pl.lit("-"),
            pl.col("_proof_no").cast(pl.String).str.zfill(8),
        ).alias("proof_ref")
    ).drop("_proof_no")


def prospect_ids(rng: np.random.Generator, n: int, taken: np.ndarray | None = None) -> np.ndarray:
    """Random, unique, opaque 62-bit ids (never a row number: nothing can be inferred from one)."""
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        draw = rng.integers(10**15, 2**62, size=n - len(out) + 16, dtype=np.int64)
        both = np.concatenate([out, draw])
        _, first = np.unique(both, return_index=True)
        out = both[np.sort(first)]
        if taken is not None and len(taken):
            out = out[~np.isin(out, taken)]
    return out[:n]


def numbers(rng: np.random.Generator, territory: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """National numbers and country codes for each row's territory (numbers unique per row)."""
    national = np.zeros(len(territory), dtype=np.int64)
    cc = np.zeros(len(territory), dtype=np.int16)
    for code, terr in phones.TERRITORIES.items():
        mask = territory == code
        national[mask] = phones.sample_numbers(rng, code, int(mask.sum()))
        cc[mask] = terr.country_code
    return national, cc


def seal_chunk(args: tuple[bytes, bytes, np.ndarray, np.ndarray, np.ndarray]) -> tuple[pa.Array, pa.Array]:
    """Encrypt and HMAC one chunk of (ids, national numbers, country codes); runs in a worker."""
    vault_key, hmac_key, ids, national, cc = args
    nums = [f"+{c}{n}".encode() for c, n in zip(cc.tolist(), national.tolist(), strict=True)]
    cts = encrypt_numbers(vault_key, nums, ids.tolist())
    macs = hmac_numbers(hmac_key, nums)
    return pa.array(cts, type=pa.binary()), pa.array(macs, type=pa.binary(32))
