"""What an order's change of state tells its organisation's webhook endpoints: written in the
transaction of the change (webhooks' outbox), by `flows.move`, the one way an order moves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sales.orders.models import Order
from sales.orders.states import HoldKind, OrderStatus
from webhooks import service as webhooks
from webhooks.events import EventType

S, E = OrderStatus, EventType
# The states that have an event of their own, besides `order.status_changed`.
ENTERING = {
    S.on_hold: E.order_on_hold,
    S.dispatching: E.order_sending_started,
    S.sent: E.order_sending_finished,
    S.reported: E.report_final,
}


def order_data(order: Order, before: OrderStatus) -> dict[str, Any]:
    """The fields of the API's order that an event carries (GET /v1/orders/{id} has the rest).
    Counts are checked against the minimum segment size by `webhooks.emit`."""
    return {
        "order_id": order.id,
        "status": order.status.value,
        "previous_status": before.value,
        "quantity": order.quantity,
    }


def moved(session: Session, order: Order, before: OrderStatus, now: datetime) -> None:
    data = order_data(order, before)
    webhooks.emit(session, order.organisation_id, E.order_status_changed, data, now)
    event = ENTERING.get(order.status)
    if event is None:
        return
    if event is E.order_on_hold:
        volume = order.hold_kind == HoldKind.volume
        data |= {
            "hold_kind": order.hold_kind.value if order.hold_kind else None,
            # As the order's `offered_quantity`: what can be sent instead, nothing under k.
            "offered_quantity": order.reserved if volume else None,
        }
    if event is E.report_final:
        data |= {"report": {"state": "final", "url": f"/v1/orders/{order.id}/report"}}
    webhooks.emit(session, order.organisation_id, event, data, now)
