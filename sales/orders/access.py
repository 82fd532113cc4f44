"""Finding orders within the caller's reach: one (to read, or locked to act on), a list, and
an order's quote.

Every action that changes an order first locks it (`lock`), so that two requests acting on the
same order run one after the other, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from sales.accounts.schemas import Principal
from sales.orders.exceptions import OrderNotFound
from sales.orders.models import Order
from sales.orders.repository import OrderRepository
from sales.orders.states import OrderStatus
from sales.quotes.models import Quote
from sales.quotes.repository import QuoteRepository


def get_order(session: Session, who: Principal, order_id: str) -> Order:
    """An order of the caller's organisation (any for staff); 404 otherwise, so that another
    organisation's order is not even known to exist."""
    order = OrderRepository(session).get(order_id, who.scope())
    if order is None:
        raise OrderNotFound("no such order in your organisation")
    return order


def lock(session: Session, who: Principal, order_id: str) -> Order:
    order = OrderRepository(session).lock(order_id, who.scope())
    if order is None:
        raise OrderNotFound("no such order in your organisation")
    return order


def list_orders(
    session: Session,
    who: Principal,
    *,
    organisation_id: int | None = None,
    status: OrderStatus | None = None,
    content_status: str | None = None,
    cancellation_requested: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Order]:
    org = who.scope(organisation_id)
    return OrderRepository(session).search(
        org,
        status.value if status else None,
        content_status,
        cancellation_requested,
        limit,
        offset,
    )


def quote_of(session: Session, order: Order) -> Quote:
    quote = QuoteRepository(session).get(order.quote_id, None)
    assert quote is not None  # noqa: S101  (foreign key)
    return quote


def actor(who: Principal) -> str:
    """How an order's history names who acted: their role."""
    return who.role.value
