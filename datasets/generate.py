"""Vectorised generation of a realistic synthetic French prospect base.

Sampling follows the committed INSEE-derived tables (reference/): communes by population (hence
departments and regions, overseas included), age and sex jointly from the age pyramid, PCS group by
age band and sex, housing and children by age band adjusted for the size of the commune, income
band tilted by PCS group. Faker is not needed row by row: vocabularies are small tables.

Rows come out ordered by department then commune, the order in which geographic criteria prune
best, because communes are drawn as multinomial counts in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from datasets import phones, reference
from datasets.permute import key_for, permute
from datasets.vault import encrypt_numbers, hmac_numbers

DAYS_PER_YEAR = 365.2425
INCOME_TILT = {"1": 1.0, "2": 1.15, "3": 1.7, "4": 1.25, "5": 0.85, "6": 0.8, "7": 1.0, "8": 0.7}
Progress = Callable[[str, int, int], None]


def _noop(stage: str, done: int, total: int) -> None:
    return None


def _days_before(as_of: date, days: np.ndarray) -> np.ndarray:
    return np.datetime64(as_of, "D") - days.astype("timedelta64[D]")


def _enum(codes: np.ndarray, categories: list[str]) -> pl.Series:
    """A categorical column straight from integer codes (no per-row strings are ever built);
    Parquet stores it dictionary-encoded."""
    arr = pa.DictionaryArray.from_arrays(pa.array(codes, type=pa.int32()), pa.array(categories))
    series = pl.from_arrow(arr)
    assert isinstance(series, pl.Series)  # noqa: S101  (from_arrow of an Array is a Series)
    return series


@dataclass(frozen=True)
class Geography:
    """Communes in (department, INSEE) order with their codes and coordinates."""

    table: pl.DataFrame
    dep_codes: list[str]
    region_codes: list[str]
    territory_of_dep: np.ndarray  # index into TERRITORY_CODES
    region_of_dep: np.ndarray
    dep_of_commune: np.ndarray
    postcodes: list[str]
    postcode_start: np.ndarray  # commune i's postcodes are postcode_index[start[i]:start[i]+n[i]]
    postcode_count: np.ndarray
    postcode_index: np.ndarray


TERRITORY_CODES = list(phones.TERRITORIES)


@lru_cache(maxsize=1)
def geography() -> Geography:
    com = reference.communes().sort(["department", "insee"])
    deps = reference.departments().sort("code")
    dep_codes = deps["code"].to_list()
    region_codes = sorted(set(deps["region_code"].to_list()))
    dep_pos = {c: i for i, c in enumerate(dep_codes)}
    lists = com["postcodes"].str.split("|")
    flat = lists.explode()
    postcodes = sorted(set(flat.to_list()))
    pc_pos = {c: i for i, c in enumerate(postcodes)}
    counts = lists.list.len().to_numpy().astype(np.int64)
    return Geography(
        table=com,
        dep_codes=dep_codes,
        region_codes=region_codes,
        territory_of_dep=np.array([TERRITORY_CODES.index(t) for t in deps["territory"]]),
        region_of_dep=np.array([region_codes.index(r) for r in deps["region_code"]]),
        dep_of_commune=np.array([dep_pos[d] for d in com["department"]]),
        postcodes=postcodes,
        postcode_start=np.concatenate([[0], np.cumsum(counts)[:-1]]),
        postcode_count=counts,
        postcode_index=np.array([pc_pos[c] for c in flat.to_list()]),
    )


@dataclass(frozen=True)
class Plan:
    """What the vault needs before the other attributes exist: ids, communes, territories."""

    ids: np.ndarray
    commune: np.ndarray  # index into Geography.table
    territory: np.ndarray  # index into TERRITORY_CODES


def plan(n: int, seed: int) -> Plan:
    geo = geography()
    rng = np.random.default_rng([seed, 1])
    weights = geo.table["population"].to_numpy().astype(np.float64)
    counts = rng.multinomial(n, weights / weights.sum())
    commune = np.repeat(np.arange(len(weights)), counts)  # already in department order
    return Plan(
        prospect_ids(seed, 0, n), commune, geo.territory_of_dep[geo.dep_of_commune[commune]]
    )


def _geography_columns(rng: np.random.Generator, commune: np.ndarray) -> dict[str, pl.Series]:
    geo = geography()
    dep = geo.dep_of_commune[commune]
    pick = (rng.random(len(commune)) * geo.postcode_count[commune]).astype(np.int64)
    postcode = geo.postcode_index[geo.postcode_start[commune] + pick]
    return {
        "region": _enum(geo.region_of_dep[dep], geo.region_codes),
        "department": _enum(dep, geo.dep_codes),
        "commune": _enum(commune, geo.table["insee"].to_list()),
        "postcode": _enum(postcode, geo.postcodes),
        "lat": pl.Series(geo.table["lat"].to_numpy()[commune], dtype=pl.Float32),
        "lon": pl.Series(geo.table["lon"].to_numpy()[commune], dtype=pl.Float32),
    }


def _age_sex(
    rng: np.random.Generator, n: int, as_of: date
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    rng: np.random.Generator, band: np.ndarray, commune: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tab = reference.household()
    order = [b for b, _, _ in reference.AGE_BANDS]
    tab = tab.with_columns(pl.col("age_band").replace_strict(order, list(range(len(order)))))
    tab = tab.sort("age_band")
    # Cities have more tenants and flats, villages more owners of houses (INSEE, Logement 2020):
    # communes fall in four size classes, each with a factor on the age band's base rate.
    pop = geography().table["population"].to_numpy()
    size_class = np.select([pop >= 100_000, pop >= 20_000, pop < 2_000], [0, 1, 3], default=2)
    owner_f = np.array([0.65, 0.85, 1.0, 1.18])
    house_f = np.array([0.22, 0.7, 1.05, 1.55])
    owner_t = np.minimum(np.outer(tab["owner"].to_numpy(), owner_f), 0.95).ravel()
    house_t = np.minimum(np.outer(tab["house"].to_numpy(), house_f), 0.97).ravel()
    cell = band * 4 + size_class[commune]
    n = len(band)
    owner = rng.random(n, dtype=np.float32) < owner_t.astype(np.float32)[cell]
    house = rng.random(n, dtype=np.float32) < house_t.astype(np.float32)[cell]
    children = rng.random(n, dtype=np.float32) < tab["children"].to_numpy().astype(np.float32)[band]
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


@lru_cache(maxsize=1)
def _interest_masks() -> tuple[np.ndarray, ...]:
    """Per (sex, age class) group, the probability of each of the 2**k interest masks; computed
    once per process (a 2**k x k product, too costly to redo for every chunk)."""
    tab = reference.interests()
    k = tab.height
    bits = ((np.arange(1 << k)[:, None] >> np.arange(k)) & 1).astype(np.float64)
    out = []
    for g in range(6):
        rate = tab["base_rate"].to_numpy().astype(np.float64)
        if g % 2:
            rate = rate * tab["f_mult"].to_numpy()
        if g // 2 == 0:
            rate = rate * tab["young_mult"].to_numpy()
        elif g // 2 == 2:
            rate = rate * tab["senior_mult"].to_numpy()
        rate = np.clip(rate, 0.0, 0.95)
        p = np.exp(bits @ np.log(rate) + (1 - bits) @ np.log1p(-rate))
        out.append(p / p.sum())
    return tuple(out)


def _interests(rng: np.random.Generator, age: np.ndarray, is_f: np.ndarray) -> np.ndarray:
    """A bitmask of independent interests, drawn in one categorical draw per row: within a
    (sex, age class) group, every one of the 2**k masks has the product probability."""
    age_class = np.where(age < 35, 0, np.where(age >= 65, 2, 1))
    group = age_class * 2 + is_f.astype(np.int64)
    out = np.zeros(len(age), dtype=np.int32)
    for g, p in enumerate(_interest_masks()):
        rows = group == g
        out[rows] = rng.choice(len(p), size=int(rows.sum()), p=p)
    return out


def _consent(rng: np.random.Generator, n: int, as_of: date) -> dict[str, Any]:
    src = reference.consent_sources()
    shares = src["share"].to_numpy().astype(np.float64)
    source = rng.choice(len(src), size=n, p=shares / shares.sum())
    age_days = rng.integers(30, int(6 * DAYS_PER_YEAR), n)
    consent_date = _days_before(as_of, age_days)
    # Last interaction: between consent and today, mostly recent; a share falls beyond 3 years.
    since = np.floor(age_days * rng.beta(1.0, 3.0, n)).astype(np.int64)
    last = _days_before(as_of, since)
    opt_in = rng.random(n) >= 0.03  # 3% withdrew their SMS consent since collection
    proof = rng.integers(10**7, 10**8, n)  # eight digits, no padding to compute
    return {
        "opt_in": opt_in,
        "consent_date": consent_date,
        "consent_source": source,
        "proof_no": proof,
        "last_interaction": last,
    }


ATTRIBUTE_CHUNK = 1_000_000


def attributes(draft: Plan, seed: int, as_of: date) -> pl.DataFrame:
    """The prospects' targeting attributes, in the plan's (department, commune) order.

    Drawn a million rows at a time, each chunk with its own random stream: the temporary arrays
    of one chunk, not of the whole base, sit beside the result, and chunks can be drawn in
    parallel (datasets.build) with the very same result."""
    parts = list(attribute_chunks(draft, seed, as_of))
    return pl.concat(parts, rechunk=False) if len(parts) > 1 else parts[0]


def attribute_chunks(draft: Plan, seed: int, as_of: date) -> Iterator[pl.DataFrame]:
    """`attributes` one chunk at a time, drawn as they are asked for (a writer that streams
    them never holds the whole base)."""
    for k, args in enumerate(chunks(draft)):
        yield attributes_chunk(seed, k, *args, as_of)


def chunks(draft: Plan) -> list[tuple[np.ndarray, np.ndarray]]:
    """At least one chunk, empty for an empty plan (a refresh without newcomers): the frame
    then keeps its columns and types."""
    return [
        (draft.ids[i : i + ATTRIBUTE_CHUNK], draft.commune[i : i + ATTRIBUTE_CHUNK])
        for i in range(0, max(len(draft.ids), 1), ATTRIBUTE_CHUNK)
    ]


def attributes_chunk(
    seed: int, index: int, ids: np.ndarray, commune: np.ndarray, as_of: date
) -> pl.DataFrame:
    return _attributes_chunk(np.random.default_rng([seed, 4, index]), ids, commune, as_of)


def _attributes_chunk(
    rng: np.random.Generator, ids: np.ndarray, commune: np.ndarray, as_of: date
) -> pl.DataFrame:
    n = len(ids)
    geo_cols = _geography_columns(rng, commune)
    age, is_f, birth = _age_sex(rng, n, as_of)
    band = _band_index(age)
    csp = _csp(rng, band, is_f)
    owner, house, children = _household(rng, band, commune)
    income = _income(rng, csp)
    interests = _interests(rng, age, is_f)
    consent = _consent(rng, n, as_of)
    src_codes = reference.consent_sources()["code"].to_list()
    inc_codes = reference.income().sort("code")["code"].to_list()
    df = pl.DataFrame(
        {
            "prospect_id": ids,
            "sex": _enum(np.where(is_f, 0, 1), ["F", "M"]),
            "birth_date": birth,
            "csp": _enum(csp - 1, [str(i) for i in range(1, 9)]),
            **geo_cols,
            "housing": _enum(np.where(owner, 0, 1), ["owner", "tenant"]),
            "dwelling": _enum(np.where(house, 0, 1), ["house", "flat"]),
            "children": children,
            "income": _enum(income, inc_codes),
            "interests": interests,
            "opt_in": consent["opt_in"],
            "consent_date": consent["consent_date"],
            "consent_source": _enum(consent["consent_source"], src_codes),
            "last_interaction": consent["last_interaction"],
        }
    )
    return df.with_columns(
        _proof_refs(consent["consent_date"], consent["proof_no"]).alias("proof_ref")
    )


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII decimal digits of non-negative integers, zero-padded to `width`: (n, width) uint8."""
    out = np.empty((len(values), width), dtype=np.uint8)
    rest = values.astype(np.int64)
    for col in range(width - 1, -1, -1):
        rest, digit = np.divmod(rest, 10)
        out[:, col] = digit + ord("0")
    return out


def _proof_refs(day: np.ndarray, proof: np.ndarray) -> pl.Series:
    """ "PRF-YYYYMMDD-NNNNNNNN" per row, built as fixed-width bytes (no per-row Python string)."""
    months = day.astype("datetime64[M]")
    yyyymmdd = (
        (months.astype("datetime64[Y]").astype(np.int64) + 1970) * 10_000
        + (months.astype(np.int64) % 12 + 1) * 100
        + (day - months).astype(np.int64)
        + 1
    )
    n = len(day)
    text = np.empty((n, 21), dtype=np.uint8)
    text[:, :4] = np.frombuffer(b"PRF-", dtype=np.uint8)
    text[:, 4:12] = _digits(yyyymmdd, 8)
    text[:, 12] = ord("-")
    text[:, 13:] = _digits(proof, 8)
    offsets = pa.py_buffer(np.arange(0, 21 * (n + 1), 21, dtype=np.int32))
    arr = pa.StringArray.from_buffers(n, offsets, pa.py_buffer(text))
    series = pl.from_arrow(arr)
    assert isinstance(series, pl.Series)  # noqa: S101  (from_arrow of an Array is a Series)
    return series


def prospect_ids(seed: int, start: int, n: int) -> np.ndarray:
    """Opaque 62-bit ids, unique by construction: a keyed permutation of the counters
    [start, start + n). A refresh continues the counter, so ids are never reused."""
    counters = np.arange(start, start + n, dtype=np.uint64)
    return permute(counters, 62, key_for(seed, 2)).astype(np.int64)


def numbers(
    seed: int, territory: np.ndarray, start: dict[str, int] | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """National numbers and country codes for each row's territory, unique across the base's
    whole history (per-territory counters continue from `start`); returns the new counters."""
    national = np.zeros(len(territory), dtype=np.int64)
    cc = np.zeros(len(territory), dtype=np.int16)
    counters = dict(start or {})
    for i, (code, terr) in enumerate(phones.TERRITORIES.items()):
        mask = territory == i
        n = int(mask.sum())
        first = counters.get(code, 0)
        national[mask] = phones.sample_numbers(key_for(seed, 10 + i), code, first, n)
        counters[code] = first + n
        cc[mask] = terr.country_code
    return national, cc, counters


def seal_chunk(
    args: tuple[bytes, bytes, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[pa.Array, pa.Array]:
    """Encrypt and HMAC one chunk of (ids, national numbers, country codes); runs in a worker."""
    vault_key, hmac_key, ids, national, cc = args
    e164 = pl.concat_str(
        pl.lit("+"), pl.Series(cc).cast(pl.String), pl.Series(national).cast(pl.String)
    )
    nums: list[bytes] = pl.select(e164).to_series().cast(pl.Binary).to_list()
    macs = pa.py_buffer(b"".join(hmac_numbers(hmac_key, nums)))
    return (
        _binary(encrypt_numbers(vault_key, nums, ids)),
        pa.FixedSizeBinaryArray.from_buffers(pa.binary(32), len(nums), [None, macs]),
    )


def _binary(values: list[bytes]) -> pa.Array:
    """An Arrow binary array from one join of the values: pa.array() on a list of bytes costs
    ~10x more, as much as the encryption itself."""
    lengths = np.fromiter(map(len, values), dtype=np.int32, count=len(values))
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    data = pa.py_buffer(b"".join(values))
    return pa.BinaryArray.from_buffers(
        pa.binary(), len(values), [None, pa.py_buffer(offsets), data]
    )
