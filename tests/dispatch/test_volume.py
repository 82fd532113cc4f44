"""The 10% promise, both ways, at send time: the recipients are drawn again against the base
as it is then; the volume sent is never above the quantity ordered, is topped up when people
left, goes out when at least 90% remain (billed for what was sent), and is held, with nothing
sent, below that."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select, update

from dispatch import flows
from dispatch.models import Recipient
from kit.db import unit_of_work
from sales.orders.repository import OrderRepository
from sales.orders.states import OrderStatus
from segmentation import runtime
from segmentation.criteria import Criteria
from segmentation.repository import ReservationRepository, SuppressionRepository
from tests.conftest import ScanningClient, auth
from tests.factories import at_send_time, scheduled_order

QUANTITY = 200


def _opt_out(ids: np.ndarray, now: datetime) -> None:
    """These prospects answered STOP: on the global suppression list."""
    seg = runtime.current()
    table = seg.engine.contacts_of(ids)
    with unit_of_work() as session:
        suppressions = SuppressionRepository(session)
        for mac in table.column("phone_hmac").to_pylist():
            suppressions.add(bytes(mac), "stop_reply", "test", now)


def _prepare(
    client: ScanningClient, keys: dict[str, str], department: str, leave: int | None
) -> tuple[dict[str, Any], np.ndarray, datetime]:
    """A confirmed order of QUANTITY in one department; with `leave`, everyone of the
    segment outside the reservation has opted out, so no top-up is possible, then `leave`
    reserved recipients opt out too."""
    criteria = {"departments": [department]}
    order = scheduled_order(client, keys, criteria, QUANTITY)
    now = at_send_time(order)
    seg = runtime.current()
    with unit_of_work() as session:
        reserved = np.asarray(ReservationRepository(session).held_by(order["id"]), dtype=np.int64)
        segment = seg.engine.matching_ids(Criteria.model_validate(criteria), now.date())
    assert len(reserved) == QUANTITY
    if leave is not None:
        _opt_out(np.setdiff1d(segment, reserved), now)
        _opt_out(reserved[:leave], now)
    return order, reserved, now


def _ledger(order_id: str) -> list[int]:
    with unit_of_work() as session:
        return list(
            session.scalars(
                select(Recipient.prospect_id).where(
                    Recipient.order_id == order_id, Recipient.prospect_id >= 0
                )
            )
        )


def test_people_who_left_are_replaced_up_to_the_quantity_never_above(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    order, reserved, now = _prepare(app_client, org_keys, "59", None)
    _opt_out(reserved[:30], now)  # 15% of the reservation left, the segment has more
    with unit_of_work() as session:
        assert flows.start(session, order["id"], runtime.current(), now)
    sent_to = _ledger(order["id"])
    assert len(sent_to) == QUANTITY  # topped up, never above
    assert not set(sent_to) & set(reserved[:30].tolist())  # opt-outs are final


def test_at_least_90_percent_left_goes_out_and_is_billed_for_what_was_sent(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    order, reserved, now = _prepare(app_client, org_keys, "62", 15)  # 92.5% remain
    with unit_of_work() as session:
        assert flows.start(session, order["id"], runtime.current(), now)
        status = OrderRepository(session).get(order["id"], None)
        assert status is not None
        assert status.status is OrderStatus.dispatching
    sent_to = _ledger(order["id"])
    assert len(sent_to) == QUANTITY - 15
    assert not set(sent_to) & set(reserved[:15].tolist())
    # Sent to the end: the balance is invoiced for the 185 sent, not the 200 ordered.
    with unit_of_work() as session:
        session.execute(
            update(Recipient).where(Recipient.order_id == order["id"]).values(status="submitted")
        )
        row = OrderRepository(session).get(order["id"], None)
        assert row is not None
        flows.finish(session, row, now)
    invoices = app_client.get(
        "/v1/invoices", params={"order_id": order["id"]}, headers=auth(org_keys["acme"])
    ).json()["items"]
    [balance] = [i for i in invoices if i["kind"] == "balance"]
    assert f"{QUANTITY - 15} messages sent" in balance["description"]


def test_below_90_percent_nothing_is_sent_and_the_order_is_held(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    order, _, now = _prepare(app_client, org_keys, "69", 30)  # 85% remain
    with unit_of_work() as session:
        assert flows.start(session, order["id"], runtime.current(), now)
        rows = session.scalar(select(func.count()).where(Recipient.order_id == order["id"]))
    assert rows == 0  # nothing planned, nothing sent
    held = app_client.get(f"/v1/orders/{order['id']}", headers=auth(org_keys["acme"])).json()
    assert held["status"] == "on_hold"
    offered = held["offered_quantity"]
    assert 100 <= offered < QUANTITY * 0.9  # a rounded, noisy count, never under the minimum
