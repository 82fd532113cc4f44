"""Matching hashed exclusion files with the base, in the worker (it alone holds the vault
key): the base's numbers are decrypted batch by batch in memory, hashed as each customer
hashed its own (SHA-256 of the organisation's salt and the E.164 number), and the numbers
found are kept as their opt-out HMACs, the form counts and draws read. Short transactions:
read the hashes, match (no connection held), store each file's HMACs if it was not replaced
meanwhile. A match holds for one snapshot: after a refresh every hashed file is matched again
(its members new in the base would be missed), and until then counts and draws naming it
refuse (segmentation/runtime.Segmenter.load_exclusions). The files waiting are matched in
one pass over the base: a refresh costs one decryption of the base, not one per file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from datasets.vault import decrypt_numbers
from kit import clock, keys
from kit.db import unit_of_work
from sales.exclusions.ingest import CHUNK, KEY
from sales.exclusions.repository import ExclusionRepository
from sales.exclusions.service import salt_for
from segmentation import runtime
from segmentation.models import ExclusionFile
from segmentation.runtime import Segmenter

BATCH = 100_000  # contacts decrypted at a time
# Customer hashes held in memory for one pass (a set of 32-byte keys: about 100 bytes each);
# a largest file (5 million) alone, or many smaller ones together.
PASS_KEYS = 5_000_000


@dataclass(frozen=True)
class Job:
    """One hashed file to match: its revision when read, its organisation's salt, its hashes."""

    file_id: str
    revision: str
    salt: str
    wanted: set[bytes]


def _job(file_id: str, version: str) -> Job | None:
    """The file's hashes, or None when it is gone or already matched with `version`."""
    with unit_of_work() as session:
        row = session.get(ExclusionFile, file_id)
        if row is None or row.form != "sha256":
            return None
        if row.matched_at is not None and row.matched_snapshot == version:
            return None
        wanted = set(_split(b"".join(ExclusionRepository(session).chunks(file_id, "sha256"))))
        return Job(file_id, row.digest, salt_for(row.organisation_id), wanted)


def _store(job: Job, found: list[bytes], version: str) -> bool:
    """Keep the HMACs found as the file's members for `version`; False when the file was
    replaced or deleted meanwhile (its new hashes are matched at the next round)."""
    with unit_of_work() as session:
        repo = ExclusionRepository(session)
        if not repo.mark_matched(job.file_id, job.revision, clock.now(), version):
            return False
        repo.drop_chunks(job.file_id, "hmac")
        for seq, start in enumerate(range(0, len(found), CHUNK)):
            blob = b"".join(sorted(found[start : start + CHUNK]))
            repo.add_chunk(job.file_id, "hmac", seq, blob)
    return True


def match(file_id: str, seg: Segmenter) -> bool:
    """Match one hashed file with the segmenter's snapshot; False when it is gone, already
    matched with that snapshot, or replaced meanwhile."""
    job = _job(file_id, seg.version)
    if job is None:
        return False
    [found] = matching_hmacs(seg.engine.snapshot.contacts, [job])
    return _store(job, found, seg.version)


def matching_hmacs(contacts: Path, jobs: list[Job]) -> list[list[bytes]]:
    """For each job, the HMACs of the base's numbers whose salted SHA-256 it holds: one pass,
    each number decrypted once and hashed once per salt (files of one organisation share it)."""
    key = keys.vault_key()
    by_salt: dict[str, list[Job]] = {}
    for job in jobs:
        by_salt.setdefault(job.salt, []).append(job)
    found: dict[str, list[bytes]] = {job.file_id: [] for job in jobs}
    table = pq.ParquetFile(contacts)
    for batch in table.iter_batches(BATCH, columns=["prospect_id", "phone_enc", "phone_hmac"]):
        ids = batch.column(0).to_pylist()
        numbers = decrypt_numbers(key, batch.column(1).to_pylist(), ids)
        hmacs = batch.column(2).to_pylist()
        for salt, group in by_salt.items():
            prefix = salt.encode()
            for number, mac in zip(numbers, hmacs, strict=True):
                # service.salted_sha256, inlined: it runs once per number of the base
                digest = hashlib.sha256(prefix + number.encode()).digest()
                for job in group:
                    if digest in job.wanted:
                        found[job.file_id].append(bytes(mac))
        del numbers
    return [found[job.file_id] for job in jobs]


def _split(blob: bytes) -> list[bytes]:
    return [bytes(k) for k in np.frombuffer(blob, dtype=f"V{KEY}")]


def _passes(pending: list[str], version: str) -> Iterator[list[Job]]:
    """The files waiting, read a pass at a time: as many as PASS_KEYS hashes hold."""
    group: list[Job] = []
    held = 0
    for file_id in pending:
        job = _job(file_id, version)
        if job is None:
            continue
        if group and held + len(job.wanted) > PASS_KEYS:
            yield group
            group, held = [], 0
        group.append(job)
        held += len(job.wanted)
    if group:
        yield group


def match_pending() -> int:
    """Match every hashed file waiting for the current snapshot (new, replaced, or matched
    with an older one before a refresh); how many were matched."""
    seg = runtime.current()
    with unit_of_work() as session:
        pending = ExclusionRepository(session).unmatched(seg.version)
    done = 0
    for group in _passes(pending, seg.version):
        found = matching_hmacs(seg.engine.snapshot.contacts, group)
        done += sum(
            _store(job, hmacs, seg.version) for job, hmacs in zip(group, found, strict=True)
        )
    return done
