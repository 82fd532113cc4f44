"""Orders and their event history (who did what, when)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, JSONOf, UTCDateTime
from sales.orders.states import ContentStatus, HoldKind, OrderStatus
from sales.pricing.schemas import Price, PriceGrid


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_org_created", "organisation_id", "created_at"),
        Index("ix_orders_status_send_at", "status", "send_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    quote_id: Mapped[str] = mapped_column(ForeignKey("quotes.id"))
    status: Mapped[OrderStatus] = mapped_column(Enum(OrderStatus, native_enum=False, length=20))
    quantity: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    sender: Mapped[str] = mapped_column(String(11))
    send_at: Mapped[datetime] = mapped_column(UTCDateTime())  # requested; windows apply later
    encoding: Mapped[str] = mapped_column(String(5))
    characters: Mapped[int] = mapped_column(Integer)
    segments: Mapped[int] = mapped_column(Integer)  # the worst case over the destination zones
    grid: Mapped[PriceGrid] = mapped_column(JSONOf(PriceGrid))  # what it was priced with
    price: Mapped[Price] = mapped_column(JSONOf(Price))  # for `quantity`
    content_status: Mapped[ContentStatus] = mapped_column(
        Enum(ContentStatus, native_enum=False, length=10)
    )
    content_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    hold_kind: Mapped[HoldKind | None] = mapped_column(
        Enum(HoldKind, native_enum=False, length=10), nullable=True
    )
    hold_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    held_from: Mapped[OrderStatus | None] = mapped_column(
        Enum(OrderStatus, native_enum=False, length=20), nullable=True
    )
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dispatch_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Internal: reserved recipients per department (for the send plan); never shown as such.
    plan: Mapped[dict[str, int] | None] = mapped_column(JSONOf(dict[str, int]), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Bumped by every change; taking it first is how a transaction locks the order.
    version: Mapped[int] = mapped_column(Integer, default=1)


class OrderEvent(Base):
    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order_id", "order_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    actor: Mapped[str] = mapped_column(String(20))  # client, account_manager, admin, system
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONOf(dict[str, Any]), default=dict)
