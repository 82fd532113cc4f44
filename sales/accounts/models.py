"""Organisations, their users (role per user), API keys (stored as SHA-256 digests), and what
people need to sign in to the web app: e-mail, argon2 password hash, sessions, failed attempts."""

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
    # People who sign in to the web app; users made for an API key have neither.
    email: Mapped[str | None] = mapped_column(String(254), unique=True, nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # A one-time password printed by the CLI: changed at the first sign-in.
    password_must_change: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # A leaver's account: no sign-in, no session, no API key from then on, until enabled again.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

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


class WebSession(Base):
    """A signed-in browser. The cookie carries a random token; only its digest is stored, so a
    copy of the database opens no session."""

    __tablename__ = "web_sessions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))  # must come back with every form
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")


class SignInFailure(Base):
    """A failed sign-in, by digests of the e-mail and of the address it came from (never the
    e-mail itself): the throttle counts them over a short window."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (
        Index("ix_sign_in_failures_email_at", "email_digest", "at"),
        Index("ix_sign_in_failures_address_at", "address_digest", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email_digest: Mapped[str] = mapped_column(String(64))
    address_digest: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


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
