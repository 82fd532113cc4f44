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

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE = 12


def normalise_e164(number: str) -> str:
    """The canonical form that is hashed: E.164 with '+', digits only."""
    import phonenumbers

    parsed = phonenumbers.parse(number, "FR")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def hmac_numbers(key: bytes, numbers: Sequence[bytes]) -> list[bytes]:
    base = _hashlib.hmac_new(key, digestmod="sha256")
    out = []
    for n in numbers:
        h = base.copy()
        h.update(n)
        out.append(h.digest())
    return out


def hmac_number(key: bytes, e164: str) -> bytes:
    return hmac_numbers(key, [e164.encode()])[0]


def encrypt_numbers(key: bytes, numbers: Sequence[bytes], ids: Sequence[int]) -> list[bytes]:
    enc = AESGCM(key).encrypt
    nonces = os.urandom(NONCE * len(numbers))
    aad = [int(i).to_bytes(8, "big", signed=True) for i in ids]
    cts = map(enc, (nonces[j : j + NONCE] for j in range(0, len(nonces), NONCE)), numbers, aad)
    return [nonces[j * NONCE : (j + 1) * NONCE] + ct for j, ct in enumerate(cts)]


def decrypt_number(key: bytes, blob: bytes, prospect_id: int) -> str:
    """Only the dispatch worker calls this, batch by batch, in memory."""
    aad = int(prospect_id).to_bytes(8, "big", signed=True)
    return AESGCM(key).decrypt(blob[:NONCE], blob[NONCE:], aad).decode()
