"""Matching a hashed exclusion file with the base, in the worker (it alone holds the vault
key): the base's numbers are decrypted batch by batch in memory, hashed as the customer hashed
its own (SHA-256 of the organisation's salt and the E.164 number), and the numbers found are
kept as their opt-out HMACs, the form counts and draws read. Three short transactions: read
the hashes, match (no connection held), store the HMACs if the file was not replaced
meanwhile. A match holds for one snapshot: after a refresh the file is matched again (its
members new in the base would be missed), and until then counts and draws naming it refuse
(segmentation/runtime.Segmenter.load_exclusions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from datasets.vault import decrypt_numbers
from kit import clock, keys
from kit.db import unit_of_work
from sales.exclusions.ingest import CHUNK, KEY
from sales.exclusions.repository import ExclusionRepository
from sales.exclusions.service import salt_for, salted_sha256
from segmentation import runtime
from segmentation.models import ExclusionFile
from segmentation.runtime import Segmenter

BATCH = 100_000  # contacts decrypted at a time


def match(file_id: str, seg: Segmenter) -> bool:
    """Match one hashed file with the segmenter's snapshot; False when it is gone, already
    matched with that snapshot, or replaced meanwhile."""
    version = seg.version
    with unit_of_work() as session:
        row = session.get(ExclusionFile, file_id)
        if row is None or row.form != "sha256":
            return False
        if row.matched_at is not None and row.matched_snapshot == version:
            return False
        revision, salt = row.digest, salt_for(row.organisation_id)
        wanted = set(_split(b"".join(ExclusionRepository(session).chunks(file_id, "sha256"))))
    found = matching_hmacs(seg.engine.snapshot.contacts, salt, wanted)
    with unit_of_work() as session:
        repo = ExclusionRepository(session)
        if not repo.mark_matched(file_id, revision, clock.now(), version):
            return False
        repo.drop_chunks(file_id, "hmac")
        for seq, start in enumerate(range(0, len(found), CHUNK)):
            repo.add_chunk(file_id, "hmac", seq, b"".join(sorted(found[start : start + CHUNK])))
    return True


def matching_hmacs(contacts: Path, salt: str, wanted: set[bytes]) -> list[bytes]:
    """The HMACs of the base's numbers whose salted SHA-256 is in `wanted`."""
    key = keys.vault_key()
    found: list[bytes] = []
    table = pq.ParquetFile(contacts)
    for batch in table.iter_batches(BATCH, columns=["prospect_id", "phone_enc", "phone_hmac"]):
        ids = batch.column(0).to_pylist()
        numbers = decrypt_numbers(key, batch.column(1).to_pylist(), ids)
        hmacs = batch.column(2).to_pylist()
        for number, mac in zip(numbers, hmacs, strict=True):
            if salted_sha256(salt, number.encode()) in wanted:
                found.append(bytes(mac))
        del numbers
    return found


def _split(blob: bytes) -> list[bytes]:
    return [bytes(k) for k in np.frombuffer(blob, dtype=f"V{KEY}")]


def match_pending() -> int:
    """Match every hashed file waiting for the current snapshot (new, replaced, or matched
    with an older one before a refresh); how many were matched."""
    seg = runtime.current()
    with unit_of_work() as session:
        pending = ExclusionRepository(session).unmatched(seg.version)
    return sum(match(file_id, seg) for file_id in pending)
