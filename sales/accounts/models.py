"""Organisations, their users (role per user) and API keys (stored as SHA-256 digests)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kit.db import Base, JSONOf, UTCDateTime


class Role(enum.StrEnum):
    client = "client"
    account_manager = "account_manager"
    admin = "admin"


class ContentReview(enum.StrEnum):
    auto = "auto"  # messages are approved when the order is placed
    manual = "manual"  # every message waits for an account manager


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Contract terms an account manager sets.
    content_review: Mapped[ContentReview] = mapped_column(
        Enum(ContentReview, native_enum=False, length=10),
        default=ContentReview.auto,
        server_default=ContentReview.auto.value,
    )
    refund_deposit_on_cancel: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # Who is invoiced (French legal mentions): set by an account manager.
    billing_address: Mapped[str | None] = mapped_column(Text, nullable=True)
    vat_number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    siren: Mapped[str | None] = mapped_column(String(9), nullable=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    organisation: Mapped[Organisation] = relationship(lazy="joined")


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings to tell keys apart
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    user: Mapped[User] = relationship(lazy="joined")


class AuditEvent(Base):
    """Who did what, when: every quote, and later every order action."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_action_at", "organisation_id", "action", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id"), nullable=True
    )
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONOf(dict[str, Any]), default=dict)
