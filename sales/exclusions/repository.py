"""All SQL of exclusion files (counts and draws read them through segmentation.repository).
Values are always bound; the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, cast, delete, insert, or_, select
from sqlalchemy.orm import Session

from sales.orders.models import Order
from sales.orders.states import OrderStatus
from sales.quotes.models import Quote
from segmentation.models import ExclusionChunk, ExclusionFile

# Orders that will still draw (at confirmation or at send time): their files must stay.
DRAWING = (
    OrderStatus.awaiting_deposit,
    OrderStatus.confirmed,
    OrderStatus.scheduled,
    OrderStatus.dispatching,
    OrderStatus.on_hold,
)


class ExclusionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: ExclusionFile) -> None:
        self.session.add(row)
        self.session.flush()

    def get(self, file_id: str, organisation_id: int | None) -> ExclusionFile | None:
        """The file, within an organisation unless `organisation_id` is None (staff)."""
        q = select(ExclusionFile).where(ExclusionFile.id == file_id)
        if organisation_id is not None:
            q = q.where(ExclusionFile.organisation_id == organisation_id)
        return self.session.scalar(q)

    def existing(self, file_ids: list[str]) -> set[str]:
        q = select(ExclusionFile.id).where(ExclusionFile.id.in_(file_ids))
        return set(self.session.scalars(q))

    def owned(self, file_ids: list[str], organisation_id: int) -> set[str]:
        q = select(ExclusionFile.id).where(
            ExclusionFile.id.in_(file_ids), ExclusionFile.organisation_id == organisation_id
        )
        return set(self.session.scalars(q))

    def listed(self, organisation_id: int | None) -> list[ExclusionFile]:
        q = select(ExclusionFile).order_by(ExclusionFile.created_at.desc(), ExclusionFile.id)
        if organisation_id is not None:
            q = q.where(ExclusionFile.organisation_id == organisation_id)
        return list(self.session.scalars(q))

    def add_chunk(self, file_id: str, kind: str, seq: int, keys: bytes) -> None:
        self.session.execute(
            insert(ExclusionChunk),  # Core: no ORM bookkeeping per chunk
            [{"file_id": file_id, "kind": kind, "seq": seq, "keys": keys}],
        )

    def chunks(self, file_id: str, kind: str) -> list[bytes]:
        q = (
            select(ExclusionChunk.keys)
            .where(ExclusionChunk.file_id == file_id, ExclusionChunk.kind == kind)
            .order_by(ExclusionChunk.seq)
        )
        return [bytes(b) for b in self.session.scalars(q)]

    def drop_chunks(self, file_id: str, kind: str | None = None) -> None:
        q = delete(ExclusionChunk).where(ExclusionChunk.file_id == file_id)
        if kind is not None:
            q = q.where(ExclusionChunk.kind == kind)
        self.session.execute(q)

    def remove(self, row: ExclusionFile) -> None:
        self.drop_chunks(row.id)  # explicit: SQLite enforces ON DELETE only with a pragma
        self.session.delete(row)
        self.session.flush()

    def used_by_drawing_order(self, file_id: str) -> bool:
        """Whether an order that will still draw names the file in its quote's criteria (the
        canonical JSON text; a file id is a UUID, nothing LIKE would read as a pattern)."""
        q = (
            select(Order.id)
            .join(Quote, Quote.id == Order.quote_id)
            .where(Order.status.in_(DRAWING), cast(Quote.criteria, Text).like(f"%{file_id}%"))
            .limit(1)
        )
        return self.session.scalar(q) is not None

    def unmatched(self, version: str) -> list[str]:
        """Hashed files to match with snapshot `version`, oldest first: new or replaced ones,
        and those matched with an older snapshot (a refresh brings people they may hold)."""
        q = (
            select(ExclusionFile.id)
            .where(
                ExclusionFile.form == "sha256",
                or_(
                    ExclusionFile.matched_at.is_(None),
                    ExclusionFile.matched_snapshot.is_(None),
                    ExclusionFile.matched_snapshot != version,
                ),
            )
            .order_by(ExclusionFile.updated_at)
        )
        return list(self.session.scalars(q))

    def mark_matched(self, file_id: str, revision: str, at: datetime, version: str) -> bool:
        """Record a match with snapshot `version` if the file is still at `revision` (a
        replaced file is matched again from its new hashes)."""
        row = self.session.get(ExclusionFile, file_id)
        if row is None or row.digest != revision:
            return False
        row.matched_at, row.matched_snapshot = at, version
        self.session.flush()
        return True
