"""Keyed bijections on integer ranges: unique random-looking values without sorting or sets.

`permute(x, bits, key)` mixes a `bits`-wide integer with xor-shift and odd-multiplier rounds
(each step is invertible modulo 2**bits, so the whole is a permutation of [0, 2**bits)).
`permute_below` walks the cycle until the value falls under an arbitrary bound, which is a
permutation of [0, bound). Distinct counters therefore always give distinct outputs: ids and
phone numbers are unique by construction, and a refresh continues the counters.
These are for synthetic data, not cryptography.
"""

from __future__ import annotations

import numpy as np

_MULTIPLIERS = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93)


def key_for(seed: int, purpose: int) -> np.ndarray:
    """Three round keys derived from a seed and a purpose number."""
    return np.random.SeedSequence([seed, purpose]).generate_state(3, np.uint64)


def permute(x: np.ndarray, bits: int, key: np.ndarray) -> np.ndarray:
    mask = np.uint64((1 << bits) - 1)
    shift = np.uint64(max(1, bits // 2))
    z = x.astype(np.uint64) & mask
    with np.errstate(over="ignore"):
        for k, m in zip(key, _MULTIPLIERS, strict=True):
            z = (z ^ (np.uint64(k) & mask)) & mask
            z = (z ^ (z >> shift)) & mask
            z = (z * np.uint64(m | 1)) & mask
        z = (z ^ (z >> shift)) & mask
    return z


def permute_below(x: np.ndarray, bound: int, key: np.ndarray) -> np.ndarray:
    """A permutation of [0, bound) applied to `x` (every x must be < bound)."""
    bits = max(2, int(bound - 1).bit_length())
    z = permute(x, bits, key)
    out_of_range = z >= np.uint64(bound)
    while out_of_range.any():
        z[out_of_range] = permute(z[out_of_range], bits, key)
        out_of_range = z >= np.uint64(bound)
    return z.astype(np.int64)
