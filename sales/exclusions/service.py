"""Exclusion files: the rules (who may see and use which file, the minimum size, the salt of
hashed files). Never commits; the request owns the transaction."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from kit import keys
from kit.settings import get_settings
from sales.accounts.schemas import Principal
from sales.exclusions.exceptions import (
    ExclusionFileDeleted,
    ExclusionFileInUse,
    ExclusionFileNotFound,
    ExclusionFileTooSmall,
)
from sales.exclusions.ingest import Ingest
from sales.exclusions.repository import ExclusionRepository
from sales.exclusions.schemas import ExclusionFileOut, ExclusionSalt, Form
from segmentation.criteria import Criteria
from segmentation.models import ExclusionFile

MAX_LINES = 5_000_000


def minimum() -> int:
    """The fewest distinct numbers a file may hold: the minimum segment size."""
    return get_settings().privacy.min_segment_size


def salt_for(organisation_id: int) -> str:
    """The organisation's published salt for hashed files: derived from the HMAC key, so it
    is stable, differs per organisation, and tells nothing about the key."""
    msg = f"exclusion-file salt|{organisation_id}".encode()
    return hmac.new(keys.hmac_key(), msg, hashlib.sha256).hexdigest()[:32]


def salted_sha256(salt: str, e164: bytes) -> bytes:
    """The hashed form a customer computes: SHA-256 of the salt's text then the E.164 text."""
    return hashlib.sha256(salt.encode() + e164).digest()


def salt(who: Principal) -> ExclusionSalt:
    s = salt_for(who.organisation_id)
    return ExclusionSalt(
        salt=s,
        normalisation="E.164: '+', the country code, the national number without its leading "
        "0, digits only (a French 0X XX XX XX XX is +33XXXXXXXXX)",
        hash="lowercase hex of SHA-256(salt + E.164), both as UTF-8 text, one per line",
        example=f"sha256('{s}' + E.164 number)",
    )


def start(form: Form, region: str) -> Ingest:
    return Ingest(form=form, region=region, hmac_key=keys.hmac_key(), max_lines=MAX_LINES)


def begin(session: Session, who: Principal, name: str, form: Form, now: datetime) -> ExclusionFile:
    """A new file's row, before its chunks are stored (flushed, not committed)."""
    row = ExclusionFile(
        id=str(uuid.uuid4()),
        organisation_id=who.organisation_id,
        name=name,
        form=form,
        lines=0,
        accepted=0,
        rejected=0,
        digest=uuid.uuid4().hex,
        created_at=now,
        updated_at=now,
        matched_at=None,
    )
    ExclusionRepository(session).add(row)
    return row


def replacing(session: Session, who: Principal, file_id: str, name: str | None, form: Form,
              now: datetime) -> ExclusionFile:  # fmt: skip
    """The row of a file about to be replaced, its members dropped (the request's transaction
    puts the old ones back if the new upload fails)."""
    row = get_file(session, who, file_id)
    ExclusionRepository(session).drop_chunks(row.id)
    row.name, row.form, row.updated_at, row.matched_at = name or row.name, form, now, None
    row.matched_snapshot = None
    row.digest = uuid.uuid4().hex  # counts and draws load the members again
    return row


def store(session: Session, row: ExclusionFile, chunks: Iterable[tuple[int, bytes]]) -> None:
    """Store key chunks as the ingest hands them over."""
    repo = ExclusionRepository(session)
    kind = "sha256" if row.form == "sha256" else "hmac"
    for seq, blob in chunks:
        repo.add_chunk(row.id, kind, seq, blob)


def finish(session: Session, row: ExclusionFile, ingest: Ingest, now: datetime) -> ExclusionFileOut:
    """Counts recorded; a file under the minimum segment size is refused (the request's
    transaction is rolled back: nothing of it stays)."""
    k = minimum()
    accepted = ingest.accepted
    if accepted < k:
        raise ExclusionFileTooSmall(
            f"an exclusion file needs at least {k} distinct valid numbers; this one has "
            f"{accepted} (of {ingest.lines} lines): add the rest of your customers to it",
            lines=ingest.lines,
            accepted=accepted,
            rejected=ingest.rejected,
        )
    row.lines, row.accepted, row.rejected = ingest.lines, accepted, ingest.rejected
    if row.form == "numbers":
        row.matched_at = now  # already HMACs: usable at once
    session.flush()
    return view(row)


def base_version() -> str | None:
    """The version of this host's current snapshot (its pointer only: no base is loaded)."""
    pointer = get_settings().base_dir / "CURRENT"
    return pointer.read_text().strip() if pointer.exists() else None


def ready(row: ExclusionFile, version: str | None) -> bool:
    """Usable in counts and draws on snapshot `version` (the rule of
    segmentation/repository.ExclusionReadRepository.revisions): a hashed file once the
    worker has matched it with that snapshot."""
    if row.matched_at is None:
        return False
    return row.form != "sha256" or row.matched_snapshot == version


def view(row: ExclusionFile, version: str | None = None) -> ExclusionFileOut:
    version = version or base_version()
    return ExclusionFileOut(
        id=row.id,
        name=row.name,
        form="sha256" if row.form == "sha256" else "numbers",
        lines=row.lines,
        accepted=row.accepted,
        rejected=row.rejected,
        ready=ready(row, version),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def get_file(session: Session, who: Principal, file_id: str) -> ExclusionFile:
    """Another organisation's file is not found, as one that never existed."""
    row = ExclusionRepository(session).get(file_id, who.scope())
    if row is None:
        raise ExclusionFileNotFound(
            "no such exclusion file: GET /v1/exclusion-files lists your organisation's"
        )
    return row


def list_files(session: Session, who: Principal) -> list[ExclusionFileOut]:
    version = base_version()
    return [view(r, version) for r in ExclusionRepository(session).listed(who.scope())]


def delete(session: Session, who: Principal, file_id: str) -> None:
    row = get_file(session, who, file_id)
    repo = ExclusionRepository(session)
    if repo.used_by_drawing_order(row.id):
        raise ExclusionFileInUse(
            "an order not yet sent leaves this file's members out of its send: delete the "
            "file once the order is sent or cancelled"
        )
    repo.remove(row)


def check_owned(session: Session, who: Principal, criteria: Criteria) -> None:
    """A client may name only its own organisation's files (others': not found)."""
    files = criteria.exclusion_files
    if not files or who.is_staff:
        return
    missing = set(files) - ExclusionRepository(session).owned(files, who.organisation_id)
    if missing:
        raise ExclusionFileNotFound(
            f"exclusion file {sorted(missing)[0]} is not one of yours: GET "
            "/v1/exclusion-files lists your organisation's"
        )


def check_quoted_files(session: Session, files: list[str] | None) -> None:
    """Before an order is placed from a quote: every exclusion file the quote names still
    exists. A file deleted since could not leave its people out of the draw at the deposit;
    saying so now lets the customer quote again rather than pay for an order that fails."""
    if not files:
        return
    gone = sorted(set(files) - ExclusionRepository(session).existing(files))
    if gone:
        raise ExclusionFileDeleted(
            f"the quote leaves out the members of exclusion file {gone[0]}, deleted since: "
            "ask for a new quote, naming the file again once uploaded again, or without it",
            exclusion_files=gone,
        )
