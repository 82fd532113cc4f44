"""All SQL of the idempotency keys. Every change to a claim is a compare-and-set on its token."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from sales.idempotency.models import IdempotencyKey, KeyState


class IdempotencyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, scope: str, key_digest: str) -> IdempotencyKey | None:
        return self.session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.scope == scope, IdempotencyKey.key_digest == key_digest
            )
        )

    def add(self, row: IdempotencyKey) -> IdempotencyKey:
        """Insert and flush: raises IntegrityError when another request holds the key."""
        self.session.add(row)
        self.session.flush()
        return row

    def take_over(
        self, row_id: int, old_token: str, token: str, route: str, fingerprint: str, at: datetime
    ) -> bool:
        """Make the row a fresh claim held by `token`, unless another request changed it first."""
        result = self.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == row_id, IdempotencyKey.token == old_token)
            .values(
                token=token,
                route=route,
                fingerprint=fingerprint,
                state=KeyState.in_progress,
                response_status=None,
                response_type=None,
                response_body=None,
                created_at=at,
                completed_at=None,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    def complete(
        self,
        row_id: int,
        token: str,
        status: int,
        media_type: str | None,
        body: bytes,
        at: datetime,
    ) -> bool:
        """Store the answer, if `token` still holds the claim."""
        result = self.session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == row_id,
                IdempotencyKey.token == token,
                IdempotencyKey.state == KeyState.in_progress,
            )
            .values(
                state=KeyState.completed,
                response_status=status,
                response_type=media_type,
                response_body=body,
                completed_at=at,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    def release(self, row_id: int, token: str) -> bool:
        """Forget a claim that produced no answer to keep, if `token` still holds it."""
        result = self.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == row_id,
                IdempotencyKey.token == token,
                IdempotencyKey.state == KeyState.in_progress,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    def purge(self, created_before: datetime, limit: int) -> int:
        """Delete up to `limit` keys created before the cutoff (oldest first)."""
        ids = list(
            self.session.scalars(
                select(IdempotencyKey.id)
                .where(IdempotencyKey.created_at < created_before)
                .order_by(IdempotencyKey.created_at)
                .limit(limit)
            )
        )
        if not ids:
            return 0
        result = self.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id.in_(ids), IdempotencyKey.created_at < created_before
            )
        )
        return int(getattr(result, "rowcount", 0))
