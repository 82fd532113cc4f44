"""One row per (caller, Idempotency-Key): the claim while the request runs, then its answer."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime


class KeyState(enum.StrEnum):
    in_progress = "in_progress"  # a request holds the key: the others wait for its answer
    completed = "completed"  # the answer is stored: the same request gets it again


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    # The unique constraint is the claim: of two requests inserting the same key, one wins.
    __table_args__ = (UniqueConstraint("scope", "key_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(64))  # the caller: organisation and role
    key_digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the key, never the key
    route: Mapped[str] = mapped_column(String(300))  # "POST /v1/orders"
    fingerprint: Mapped[str] = mapped_column(String(64))  # route, query and body, hashed
    # Who holds the claim: a request that finds a stale claim takes it over with a new token,
    # and the old holder's answer, compared on the token, is then never stored.
    token: Mapped[str] = mapped_column(String(32))
    state: Mapped[KeyState] = mapped_column(Enum(KeyState, native_enum=False, length=12))
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
