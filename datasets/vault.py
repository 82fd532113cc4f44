"""The contacts vault: AES-256-GCM encryption and keyed HMAC-SHA256 of normalised E.164 numbers.

Every encryption takes a fresh random 96-bit nonce (never derived from the data), stored in front
of the ciphertext; the prospect id is the associated data, so a ciphertext moved to another row
fails to decrypt. The HMAC is deterministic for a key: it matches opt-outs across snapshots
without decrypting anything.
"""

from __future__ import annotations

import _hashlib  # the OpenSSL HMAC object: copy() of a keyed state is ~2x faster than hmac.digest
import os
from collections.abc import Sequence

import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE = 12


# The national formats of French numbers, in the order they are tried: metropolitan France's,
# then the overseas departments' (a 0692 number is Reunion's, +262 692..., not France's +33).
NATIONAL_REGIONS = ("FR", "RE", "GP", "MQ", "GF", "YT")


def normalise_e164(number: str, region: str) -> str:
    """The canonical form that is hashed: E.164 with '+', digits only. `region` (FR, RE, GP...)
    reads a national-format number: a 0692 number is Reunion's, not metropolitan France's."""
    import phonenumbers

    parsed = phonenumbers.parse(number, region)
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number")  # the number itself is never echoed
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def hmac_numbers(key: bytes, numbers: Sequence[bytes]) -> list[bytes]:
    """HMAC-SHA256 of each number; the keyed state is computed once and copied per number."""
    copy = _hashlib.hmac_new(key, digestmod="sha256").copy
    out: list[bytes] = []
    append = out.append
    for n in numbers:
        h = copy()
        h.update(n)
        append(h.digest())
    return out


def hmac_number(key: bytes, e164: str) -> bytes:
    return hmac_numbers(key, [e164.encode()])[0]


def encrypt_numbers(key: bytes, numbers: Sequence[bytes], ids: np.ndarray) -> list[bytes]:
    """nonce || AES-256-GCM(number), the prospect id (8 bytes, big-endian) as associated data."""
    nonces = os.urandom(NONCE * len(numbers))
    nonce_list = [nonces[j : j + NONCE] for j in range(0, len(nonces), NONCE)]
    aad_bytes = np.asarray(ids, dtype=">i8").tobytes()
    aad = [aad_bytes[j : j + 8] for j in range(0, len(aad_bytes), 8)]
    cts = map(AESGCM(key).encrypt, nonce_list, numbers, aad)
    return [n + c for n, c in zip(nonce_list, cts, strict=True)]


def decrypt_number(key: bytes, blob: bytes, prospect_id: int) -> str:
    """Only the dispatch worker calls this, batch by batch, in memory."""
    return decrypt_numbers(key, [blob], [prospect_id])[0]


def decrypt_numbers(key: bytes, blobs: Sequence[bytes], prospect_ids: Sequence[int]) -> list[str]:
    """`decrypt_number` for a chunk: one cipher object for all (half the cost per number)."""
    decrypt = AESGCM(key).decrypt
    return [
        decrypt(blob[:NONCE], blob[NONCE:], int(pid).to_bytes(8, "big", signed=True)).decode()
        for blob, pid in zip(blobs, prospect_ids, strict=True)
    ]
