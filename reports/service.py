"""Reports: the send report of an order for whoever may read it, and its finalisation.

Services never commit. A client reads only its own organisation's reports (the order lookup is
scoped, so another organisation's order is a 404, as if it did not exist).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from reports.exceptions import ReportNotAvailable, UnknownFormat
from reports.repository import ReportRepository
from reports.schemas import Report
from sales.accounts.schemas import Principal
from sales.orders import access as orders
from sales.orders import flows as order_flows
from sales.orders.models import Order
from sales.orders.repository import OrderRepository
from sales.orders.states import OrderStatus

# The report's builder (reports/build.py: aggregates, tallies, suppression, assembly) is imported
# by the functions that build one: an API process starts without it.

S = OrderStatus
REPORTABLE = (S.dispatching, S.sent, S.reported, S.closed)
FORMATS = ("json", "csv", "html", "pdf")


def check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    if fmt not in allowed:
        raise UnknownFormat(
            f"unknown format: use one of {', '.join(allowed)}", formats=list(allowed)
        )
    return fmt


def reportable_order(session: Session, who: Principal, order_id: str) -> Order:
    """The caller's order (404 otherwise) once its sending has started (409 before)."""
    order = orders.get_order(session, who, order_id)
    if order.status not in REPORTABLE:
        raise ReportNotAvailable(
            f"the order is {order.status.value}: its report exists once sending starts",
            current_status=order.status.value,
        )
    return order


def get_report(session: Session, who: Principal, order_id: str, now: datetime) -> Report:
    from reports import build as builder

    return builder.build(session, reportable_order(session, who, order_id), now)


def report_of(session: Session, order_id: str, now: datetime) -> Report:
    """The report of any order, for the broker's own tools (CLI, demo): no scoping."""
    from reports import build as builder

    order = OrderRepository(session).get(order_id, None)
    if order is None or order.status not in REPORTABLE:
        raise ReportNotAvailable("this order has no report (not found, or not sent yet)")
    return builder.build(session, order, now)


def finalise_due(session: Session, now: datetime) -> list[str]:
    """Sent orders whose receipt window has closed become `reported` (their report is final).
    Returns their ids. Safe to run twice: each order is locked and checked again."""
    from reports import build as builder

    done = []
    for order_id in ReportRepository(session).orders_with_status(S.sent):
        order = OrderRepository(session).lock(order_id, None)
        if order is None or order.status is not S.sent:
            continue
        final = builder.final_at(session, order, now)
        if final is not None and now >= final:
            order_flows.move(session, order, S.reported, now, None, "system", "report_final")
            done.append(order.id)
    return done
