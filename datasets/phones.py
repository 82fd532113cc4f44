"""Synthetic mobile numbers that phonenumbers holds valid for each territory, unique, vectorised.

Valid ranges are read from phonenumbers' own metadata: every 5-digit prefix of the 9-digit
national number is probed, and a prefix whose 10,000 numbers all match the mobile pattern is a
block to sample from. Sampling is uniform over the blocks of a territory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl

BLOCK = 10_000


@dataclass(frozen=True)
class Territory:
    code: str  # metro, GP, MQ, GF, RE, YT
    region: str  # phonenumbers region
    country_code: int
    time_zone: str


TERRITORIES: dict[str, Territory] = {
    t.code: t
    for t in (
        Territory("metro", "FR", 33, "Europe/Paris"),
        Territory("GP", "GP", 590, "America/Guadeloupe"),
        Territory("MQ", "MQ", 596, "America/Martinique"),
        Territory("GF", "GF", 594, "America/Cayenne"),
        Territory("RE", "RE", 262, "Indian/Reunion"),
        Territory("YT", "YT", 262, "Indian/Mayotte"),
    )
}


@lru_cache(maxsize=None)
def mobile_blocks(territory: str) -> np.ndarray:
    """5-digit prefixes (as ints) whose whole 10,000-number block is a valid mobile range."""
    from phonenumbers import PhoneMetadata

    meta = PhoneMetadata.metadata_for_region(TERRITORIES[territory].region)
    if meta is None or meta.mobile is None or meta.mobile.national_number_pattern is None:
        raise RuntimeError(f"phonenumbers has no mobile metadata for {territory}")
    pattern = re.compile(meta.mobile.national_number_pattern)
    blocks = [
        p
        for p in range(60_000, 80_000)
        if pattern.fullmatch(f"{p}0000") and pattern.fullmatch(f"{p}9999")
        and pattern.fullmatch(f"{p}5555")
    ]
    return np.array(blocks, dtype=np.int64)


def sample_numbers(rng: np.random.Generator, territory: str, n: int) -> np.ndarray:
    """`n` distinct national significant numbers (9 digits, as int64), uniformly at random."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    blocks = mobile_blocks(territory)
    space = len(blocks) * BLOCK
    if n > space // 2:
        raise ValueError(f"{n} numbers requested from a space of {space} in {territory}")
    picked = np.empty(0, dtype=np.int64)
    while len(picked) < n:
        draw = rng.integers(0, space, size=int((n - len(picked)) * 1.05) + 64)
        both = np.concatenate([picked, draw])
        _, first = np.unique(both, return_index=True)
        picked = both[np.sort(first)]  # keep draw order: the sample stays random
    picked = picked[:n]
    return blocks[picked // BLOCK] * BLOCK + picked % BLOCK


def e164(territory: str, national: np.ndarray) -> pl.Series:
    """Numbers in E.164 form, e.g. '+33' followed by the 9 national digits."""
    prefix = f"+{TERRITORIES[territory].country_code}"
    return pl.select(
        pl.concat_str(pl.lit(prefix), pl.Series(national, dtype=pl.Int64).cast(pl.String))
    ).to_series()
