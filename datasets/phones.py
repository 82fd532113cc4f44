"""Synthetic mobile numbers that phonenumbers holds valid for each territory, unique, vectorised.

Valid ranges are read from phonenumbers' own metadata: every 5-digit prefix of the 9-digit
national number is probed, and a prefix whose 10,000 numbers all match the mobile pattern is a
block to sample from. Sampling is uniform over the blocks of a territory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np

from datasets.permute import permute_below

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


@cache
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
        if pattern.fullmatch(f"{p}0000")
        and pattern.fullmatch(f"{p}9999")
        and pattern.fullmatch(f"{p}5555")
    ]
    return np.array(blocks, dtype=np.int64)


def sample_numbers(key: np.ndarray, territory: str, start: int, n: int) -> np.ndarray:
    """National significant numbers (9 digits, int64) for counters [start, start + n): a keyed
    permutation of the territory's valid mobile space, so distinct counters never collide."""
    blocks = mobile_blocks(territory)
    space = len(blocks) * BLOCK
    if start + n > space // 2:
        raise ValueError(f"{start + n} numbers requested from a space of {space} in {territory}")
    if n == 0:
        return np.empty(0, dtype=np.int64)
    picked = permute_below(np.arange(start, start + n, dtype=np.uint64), space, key)
    out: np.ndarray = blocks[picked // BLOCK] * BLOCK + picked % BLOCK
    return out
