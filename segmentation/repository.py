"""All SQL of the eligibility stores. Values are always bound; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import numpy as np
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from kit import bulk, locks
from kit.db import executemany
from segmentation.models import (
    ContactEvent,
    ExclusionChunk,
    ExclusionFile,
    Reservation,
    Suppression,
)

STAMP = "reservations:stamp"
# The tables themselves, for Core executemany (without the ORM's per-row work).
CONTACT_HISTORY = ContactEvent.metadata.tables[ContactEvent.__tablename__]
RESERVATIONS = Reservation.metadata.tables[Reservation.__tablename__]


class SuppressionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, phone_hmac: bytes, reason: str, source: str | None, at: datetime) -> bool:
        """Record an opt-out; False when the number was already suppressed (it stays so)."""
        exists = self.session.scalar(
            select(Suppression.id).where(Suppression.phone_hmac == phone_hmac)
        )
        if exists is not None:
            return False
        self.session.add(
            Suppression(phone_hmac=phone_hmac, reason=reason, source=source, created_at=at)
        )
        self.session.flush()
        return True

    def contains(self, phone_hmac: bytes) -> bool:
        return (
            self.session.scalar(select(Suppression.id).where(Suppression.phone_hmac == phone_hmac))
            is not None
        )

    def among(self, phone_hmacs: list[bytes]) -> set[bytes]:
        """Those of `phone_hmacs` that are suppressed."""
        if not phone_hmacs:
            return set()
        q = select(Suppression.phone_hmac).where(Suppression.phone_hmac.in_(phone_hmacs))
        return {bytes(h) for h in self.session.scalars(q)}

    def stamp(self) -> int:
        """Changes whenever the list grows (insert-only table)."""
        return int(self.session.scalar(select(func.coalesce(func.max(Suppression.id), 0))) or 0)

    def tail(self, after_id: int) -> tuple[int, int]:
        """(how many, highest id) of the opt-outs with an id above `after_id`: whether a
        reader holding them all has anything to read."""
        row = self.session.execute(
            select(func.count(), func.coalesce(func.max(Suppression.id), 0)).where(
                Suppression.id > after_id
            )
        ).one()
        return int(row[0]), int(row[1])

    def hmacs_after(self, after_id: int) -> list[tuple[int, bytes]]:
        rows = self.session.execute(
            select(Suppression.id, Suppression.phone_hmac)
            .where(Suppression.id > after_id)
            .order_by(Suppression.id)
        )
        return [(int(i), bytes(h)) for i, h in rows]


class ContactHistoryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, rows: Iterable[tuple[bytes, str, datetime]]) -> None:
        """Append (phone HMAC, order id, sent at) rows: a send records a thousand at a time, at
        one instant, through `kit.bulk` (one DB-API executemany of tuples on SQLite, binary
        COPY on PostgreSQL): no statement compiled nor parameter dict built per chunk."""
        by_instant: dict[datetime, tuple[list[bytes], list[str]]] = {}
        for h, o, t in rows:
            macs, orders = by_instant.setdefault(t, ([], []))
            macs.append(bytes(h))
            orders.append(o)
        for t, (macs, orders) in by_instant.items():
            bulk.insert_columns(
                self.session,
                CONTACT_HISTORY,
                {"phone_hmac": macs, "order_id": orders},
                {"sent_at": t},
            )

    def tail(self, after_id: int, since: datetime) -> tuple[int, int]:
        """(how many, highest id) of the contacts with an id above `after_id` sent at or after
        `since` (read by primary key): whether a reader holding them all has anything to
        read."""
        row = self.session.execute(
            select(func.count(), func.coalesce(func.max(ContactEvent.id), 0)).where(
                ContactEvent.id > after_id, ContactEvent.sent_at >= since
            )
        ).one()
        return int(row[0]), int(row[1])

    def events(self, after_id: int, since: datetime) -> tuple[np.ndarray, list[bytes], np.ndarray]:
        """(ids, number HMACs, send times in epoch seconds) of the contacts with an id above
        `after_id` sent at or after `since`. From the start (`after_id` 0) the send-time index
        finds them; later, the few ids above `after_id` are read by primary key and filtered
        here (the send-time index would walk the whole window for them)."""
        q = select(ContactEvent.id, ContactEvent.phone_hmac, ContactEvent.sent_at)
        q = (
            q.where(ContactEvent.sent_at >= since)
            if after_id == 0
            else q.where(ContactEvent.id > after_id)
        )
        rows = self.session.execute(q).all()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        times = np.fromiter((r[2].timestamp() for r in rows), dtype=np.float64, count=len(rows))
        keep = times >= since.timestamp()
        return (
            ids[keep],
            [bytes(r[1]) for r, k in zip(rows, keep.tolist(), strict=True) if k],
            (times[keep]),
        )


class ReservationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def reserve(
        self, order_id: str, prospect_ids: np.ndarray | Iterable[int], send_at: datetime
    ) -> int:
        # One bare executemany (COPY on PostgreSQL): an order reserves up to millions at once.
        if isinstance(prospect_ids, np.ndarray):
            ids = prospect_ids.astype(np.int64).tolist()
        else:
            ids = [int(p) for p in prospect_ids]
        count = bulk.insert_columns(
            self.session,
            RESERVATIONS,
            {"prospect_id": ids},
            {"order_id": order_id, "send_at": send_at},
        )
        self._changed()
        return count

    def release(self, order_id: str, at: datetime) -> None:
        self.session.execute(
            update(Reservation)
            .where(Reservation.order_id == order_id, Reservation.released_at.is_(None))
            .values(released_at=at)
        )
        self._changed()

    def replace(
        self, order_id: str, prospect_ids: np.ndarray, send_at: datetime, now: datetime
    ) -> int:
        """Make `prospect_ids` the order's reservation for a send at `send_at`, writing only
        what changed: the rows of people no longer drawn are deleted, the newcomers' written,
        the others kept as they are. A kept row's send time must mean the same as `send_at`
        (equal, or both come due by `now`: held for every send); otherwise, or when most rows
        change, the reservation is written afresh. Returns how many are reserved."""
        ids = np.asarray(prospect_ids, dtype=np.int64)
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            ids = np.unique(ids)  # a draw comes sorted: the check costs nothing, unique seconds
        first, last, released = self.session.execute(
            select(
                func.min(Reservation.send_at),
                func.max(Reservation.send_at),
                func.count(Reservation.released_at),
            ).where(Reservation.order_id == order_id)
        ).one()
        if first is None:
            return self.reserve(order_id, ids, send_at)
        same_time = first == last == send_at or (last <= now and send_at <= now)
        if released or not same_time:  # released: never drawn again (sent, cancelled) so far
            return self._afresh(order_id, ids, send_at)
        held = self._held_ids(order_id)
        left = np.setdiff1d(held, ids, assume_unique=True)
        new = np.setdiff1d(ids, held, assume_unique=True)
        if 2 * (len(left) + len(new)) > len(held) + len(ids):  # most rows change
            return self._afresh(order_id, ids, send_at)
        # One row deleted by its unique key (order, prospect) per person who left.
        executemany(
            self.session,
            delete(RESERVATIONS).where(
                RESERVATIONS.c.order_id == order_id,
                RESERVATIONS.c.prospect_id == bindparam("pid"),
            ),
            [{"pid": p} for p in left.tolist()],
        )
        self.reserve(order_id, new, send_at)  # touches the stamp, even when nothing is new
        return len(ids)

    def _afresh(self, order_id: str, ids: np.ndarray, send_at: datetime) -> int:
        self.forget(order_id)
        return self.reserve(order_id, ids, send_at)

    def _held_ids(self, order_id: str) -> np.ndarray:
        """The prospect ids of the order's rows, sorted (unique per order; read from the
        unique index alone)."""
        q = select(RESERVATIONS.c.prospect_id).where(RESERVATIONS.c.order_id == order_id)
        return np.sort(bulk.read_ints(self.session, q))

    def forget(self, order_id: str) -> None:
        """Drop an order's reservations altogether (it is about to reserve afresh)."""
        self.session.execute(delete(Reservation).where(Reservation.order_id == order_id))
        self._changed()

    def _changed(self) -> None:
        # Changed after the rows are written, in the same transaction: a reader that cached the
        # reservations under the previous stamp rereads them once this commits. A random value,
        # so that a view cached under a stamp that was rolled back never matches again.
        locks.touch(self.session, STAMP)

    def stamp(self) -> int:
        """Changes whenever reservations are made or released."""
        return locks.current_value(self.session, STAMP)

    def held(self, excluding: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(prospect ids, send times in epoch seconds) of every reservation still held, but
        those of the order `excluding`; an order holds its reservation until it is sent or
        cancelled."""
        q = select(Reservation.prospect_id, Reservation.send_at).where(
            Reservation.released_at.is_(None)
        )
        if excluding is not None:
            q = q.where(Reservation.order_id != excluding)
        rows = self.session.execute(q).all()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        times = np.fromiter((r[1].timestamp() for r in rows), dtype=np.float64, count=len(rows))
        return ids, times

    def held_by(self, order_id: str) -> list[int]:
        q = select(Reservation.prospect_id).where(
            Reservation.order_id == order_id, Reservation.released_at.is_(None)
        )
        return [int(p) for p in self.session.scalars(q)]

    def count_held_by(self, order_id: str) -> int:
        q = select(func.count()).where(
            Reservation.order_id == order_id, Reservation.released_at.is_(None)
        )
        return int(self.session.scalar(q) or 0)


class ExclusionReadRepository:
    """What counts and draws read of the customers' exclusion files (sales/exclusions writes
    them): which files exist in which revision, and their members' keys."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def revisions(self, file_ids: Iterable[str], version: str) -> dict[str, tuple[str, bool]]:
        """file id -> (revision, usable) of those that exist, for counts and draws on snapshot
        `version`: usable once matched, a hashed file only if matched against that very
        snapshot (an older match misses the people the refresh brought). The revision changes
        with the members: replaced, or matched again."""
        rows = self.session.execute(
            select(
                ExclusionFile.id,
                ExclusionFile.digest,
                ExclusionFile.form,
                ExclusionFile.matched_at,
                ExclusionFile.matched_snapshot,
            ).where(ExclusionFile.id.in_(list(file_ids)))
        )
        out: dict[str, tuple[str, bool]] = {}
        for file_id, digest, form, matched_at, matched_snapshot in rows:
            usable = matched_at is not None and (form != "sha256" or matched_snapshot == version)
            out[str(file_id)] = (f"{digest}@{matched_snapshot or ''}", usable)
        return out

    def keys(self, file_id: str, kind: str) -> Iterator[bytes]:
        """The file's member keys of one kind, chunk by chunk (32 bytes a key)."""
        rows = self.session.execute(
            select(ExclusionChunk.keys)
            .where(ExclusionChunk.file_id == file_id, ExclusionChunk.kind == kind)
            .order_by(ExclusionChunk.seq)
        )
        for (blob,) in rows:
            yield bytes(blob)
