"""All SQL of the rights requests: challenges, requests and their actions, the base lookups by
HMAC (DuckDB over the snapshot's Parquet) and the campaigns a number received. Values are
always bound; the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from datasets.snapshot import Snapshot
from sales.accounts.models import Organisation
from sales.orders.models import Order
from sales.quotes.models import Quote
from segmentation.models import ContactEvent
from subjects.models import (
    Challenge,
    ChallengeStatus,
    RequestAction,
    RequestStatus,
    SubjectRequest,
)


class ChallengeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, challenge: Challenge) -> None:
        self.session.add(challenge)
        self.session.flush()

    def count_since(
        self, *, phone_hmac: bytes | None = None, address_mac: bytes | None = None, since: datetime
    ) -> tuple[int, datetime | None]:
        """(how many codes were asked since `since` for this number or address, the oldest
        of them): what the rate limit counts and when its window frees a place."""
        q = select(func.count(), func.min(Challenge.created_at)).where(
            Challenge.created_at >= since
        )
        if phone_hmac is not None:
            q = q.where(Challenge.phone_hmac == phone_hmac)
        if address_mac is not None:
            q = q.where(Challenge.address_mac == address_mac)
        n, oldest = self.session.execute(q).one()
        return int(n), oldest

    def by_token(self, token_hash: bytes) -> Challenge | None:
        return self.session.scalar(select(Challenge).where(Challenge.token_hash == token_hash))

    def by_access(self, access_hash: bytes) -> Challenge | None:
        return self.session.scalar(select(Challenge).where(Challenge.access_hash == access_hash))

    def pending_ids(self, limit: int) -> list[int]:
        """Pending challenges, oldest first. Two workers may read the same ones: `settle`'s
        compare-and-set lets one of them send the code."""
        q = (
            select(Challenge.id)
            .where(Challenge.status == ChallengeStatus.pending)
            .order_by(Challenge.id)
            .limit(limit)
        )
        return [int(i) for i in self.session.scalars(q)]

    def release(self, challenge_id: int) -> None:
        """sent -> pending, code forgotten: the carrier surely did not take the code."""
        self.session.execute(
            update(Challenge)
            .where(Challenge.id == challenge_id, Challenge.status == ChallengeStatus.sent)
            .values(status=ChallengeStatus.pending, code_hash=None)
        )

    def forget_before(self, cutoff: datetime) -> int:
        """Delete the challenges asked before `cutoff`; returns how many."""
        done = self.session.execute(delete(Challenge).where(Challenge.created_at < cutoff))
        return int(getattr(done, "rowcount", 0))

    def settle(self, challenge_id: int, status: str, code_hash: bytes | None) -> bool:
        """Compare-and-set pending -> sent/absent: one code per challenge, whichever worker."""
        done = self.session.execute(
            update(Challenge)
            .where(Challenge.id == challenge_id, Challenge.status == ChallengeStatus.pending)
            .values(status=status, code_hash=code_hash)
        )
        return bool(getattr(done, "rowcount", 0))


class RequestRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, request: SubjectRequest) -> SubjectRequest:
        self.session.add(request)
        self.session.flush()
        return request

    def act(
        self, request_id: int, at: datetime, actor: str, action: str, note: str | None = None
    ) -> None:
        self.session.add(
            RequestAction(request_id=request_id, at=at, actor=actor, action=action, note=note)
        )
        self.session.flush()

    def get(self, request_id: int) -> SubjectRequest | None:
        return self.session.get(SubjectRequest, request_id)

    def of_number(self, phone_hmac: bytes) -> list[SubjectRequest]:
        q = (
            select(SubjectRequest)
            .where(SubjectRequest.phone_hmac == phone_hmac)
            .order_by(SubjectRequest.id)
        )
        return list(self.session.scalars(q))

    def queue(self, status: str | None) -> list[SubjectRequest]:
        """Requests for staff, the nearest deadline first."""
        q = select(SubjectRequest).order_by(SubjectRequest.due_at, SubjectRequest.id)
        if status is not None:
            q = q.where(SubjectRequest.status == status)
        else:
            q = q.where(SubjectRequest.kind.in_(("rectification", "written")))
        return list(self.session.scalars(q))

    def to_remind(self, before: datetime) -> list[SubjectRequest]:
        """Open requests due before `before` that were never reminded."""
        q = select(SubjectRequest).where(
            SubjectRequest.status == RequestStatus.open,
            SubjectRequest.due_at < before,
            SubjectRequest.reminded_at.is_(None),
        )
        return list(self.session.scalars(q))

    def actions(self, request_id: int) -> list[RequestAction]:
        q = (
            select(RequestAction)
            .where(RequestAction.request_id == request_id)
            .order_by(RequestAction.id)
        )
        return list(self.session.scalars(q))


def campaigns(session: Session, phone_hmac: bytes) -> list[tuple[str, datetime]]:
    """(sender name, sent at) of every rental message this number received."""
    q = (
        select(Order.sender, ContactEvent.sent_at)
        .join(Order, Order.id == ContactEvent.order_id)
        .where(ContactEvent.phone_hmac == phone_hmac)
        .order_by(ContactEvent.sent_at)
    )
    return [(str(s), t) for s, t in session.execute(q)]


def rentals(session: Session, start: datetime, end: datetime) -> list[tuple[Any, ...]]:
    """Orders sent in [start, end): customer, criteria, quantity, reserved, sender, dates."""
    q = (
        select(
            Order.id,
            Organisation.name,
            Quote.criteria,
            Order.quantity,
            Order.reserved,
            Order.sender,
            Order.status,
            Order.created_at,
            Order.send_at,
        )
        .join(Organisation, Organisation.id == Order.organisation_id)
        .join(Quote, Quote.id == Order.quote_id)
        .where(Order.send_at >= start, Order.send_at < end)
        .order_by(Order.send_at, Order.id)
    )
    return [tuple(row) for row in session.execute(q)]


def sent_counts(session: Session, order_ids: list[str]) -> dict[str, int]:
    """Messages handed over per order, from the contact history (one row per recipient)."""
    if not order_ids:
        return {}
    q = (
        select(ContactEvent.order_id, func.count())
        .where(ContactEvent.order_id.in_(order_ids))
        .group_by(ContactEvent.order_id)
    )
    return {str(o): int(n) for o, n in session.execute(q)}


def prospect_of(snap: Snapshot, phone_hmac: bytes) -> dict[str, Any] | None:
    """The base's row of this number (attributes and the vault's encrypted number), or None.
    The same scan whether or not it is there."""
    con = duckdb.connect()
    try:
        row = con.execute(
            "SELECT a.*, c.phone_enc FROM read_parquet(?) AS c "
            "JOIN read_parquet(?) AS a USING (prospect_id) WHERE c.phone_hmac = ?",
            [str(snap.contacts), str(snap.attributes), phone_hmac],
        )
        found = row.fetchone()
        if found is None:
            return None
        names = [d[0] for d in row.description]
        return dict(zip(names, found, strict=True))
    finally:
        con.close()
