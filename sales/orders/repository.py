"""All SQL of orders and their events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from kit.text import is_id
from sales.orders.models import Order, OrderEvent


class OrderRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, order: Order) -> Order:
        self.session.add(order)
        self.session.flush()
        return order

    def get(self, order_id: str, organisation_id: int | None) -> Order | None:
        if not is_id(order_id):
            return None
        q = select(Order).where(Order.id == order_id)
        if organisation_id is not None:
            q = q.where(Order.organisation_id == organisation_id)
        return self.session.scalar(q)

    def lock(self, order_id: str, organisation_id: int | None) -> Order | None:
        """The order, locked until the transaction ends (a write first: portable to SQLite,
        where it takes the write lock, and PostgreSQL, where it takes the row lock), and
        reloaded so that it reflects what the previous holder committed."""
        if not is_id(order_id):
            return None
        stmt = update(Order).where(Order.id == order_id)
        if organisation_id is not None:
            stmt = stmt.where(Order.organisation_id == organisation_id)
        result = self.session.execute(
            stmt.values(version=Order.version + 1).execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 0:
            return None
        q = select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
        return self.session.scalar(q)

    def count_by_status(self) -> dict[str, int]:
        """How many orders are in each status (for the metrics; one index scan)."""
        q = select(Order.status, func.count()).group_by(Order.status)
        return {str(status.value): int(n) for status, n in self.session.execute(q)}

    def search(
        self,
        organisation_id: int | None,
        status: str | None,
        content_status: str | None,
        cancellation_requested: bool | None,
        limit: int,
        offset: int,
    ) -> list[Order]:
        """Newest first."""
        q = select(Order)
        if organisation_id is not None:
            q = q.where(Order.organisation_id == organisation_id)
        if status is not None:
            q = q.where(Order.status == status)
        if content_status is not None:
            q = q.where(Order.content_status == content_status)
        if cancellation_requested is not None:
            q = q.where(
                Order.cancel_requested_at.is_not(None)
                if cancellation_requested
                else Order.cancel_requested_at.is_(None)
            )
        q = q.order_by(Order.created_at.desc(), Order.id).limit(limit).offset(offset)
        return list(self.session.scalars(q))

    def add_event(
        self,
        order_id: str,
        at: datetime,
        user_id: int | None,
        actor: str,
        action: str,
        from_status: str | None = None,
        to_status: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.session.add(
            OrderEvent(
                order_id=order_id,
                at=at,
                user_id=user_id,
                actor=actor,
                action=action,
                from_status=from_status,
                to_status=to_status,
                details=details or {},
            )
        )
        self.session.flush()

    def events(self, order_id: str) -> list[OrderEvent]:
        q = select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
        return list(self.session.scalars(q))
