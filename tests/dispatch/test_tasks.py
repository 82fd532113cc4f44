"""The send tasks in process, against the real database and the real Redis server: delivery
receipts gathered from several deliveries into one transaction by one drainer at a time."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from sqlalchemy import select, update

from dispatch import flows, intake, tasks
from dispatch.carriers.base import Receipt, Submitted
from dispatch.models import Recipient
from kit import redisd
from kit.db import unit_of_work
from kit.settings import Settings
from rental.worker import configure
from sales.orders.models import Order
from sales.quotes.models import Quote
from tests.conftest import ScanningClient
from tests.factories import at_send_time, first_chunk, scheduled_order, started_order


def _statuses(ids: list[int]) -> list[str]:
    with unit_of_work() as session:
        q = select(Recipient.status).where(Recipient.id.in_(ids)).order_by(Recipient.id)
        return [str(s) for s in session.scalars(q)]


def test_receipts_wait_for_the_drainer_and_a_delivery_nobody_can_read_holds_up_none(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    order, now = started_order(app_client, org_keys, {"departments": ["56"]}, 120)
    rows = first_chunk(order["id"], now, 3)
    ids = [r.id for r in rows]
    with unit_of_work() as session:
        results = [Submitted(r.id, f"drain-{r.id}", parts=1) for r in rows]
        flows.record(session, order["id"], rows, results, now)
    r = redisd.client()
    r.set(tasks.DRAINING, "another-drainer")  # another drainer holds the lease
    tasks.feedback_task([[f"drain-{ids[0]}", "delivered", None]], [])
    r.rpush(tasks.RECEIPTS, json.dumps([["no-status"]]))  # a delivery that cannot be read
    tasks.feedback_task(
        [[f"drain-{ids[1]}", "failed", "absent"], [f"drain-{ids[2]}", "delivered", None]], []
    )
    assert _statuses(ids) == ["submitted"] * 3  # they wait for the drainer that holds the lease
    r.delete(tasks.DRAINING)  # it went away (its lease ran out): the next drain takes them all
    assert tasks.drain_receipts() == 3
    assert _statuses(ids) == ["delivered", "failed", "delivered"]
    assert r.llen(tasks.RECEIPTS) == 0
    assert tasks.drain_receipts() == 0  # applied once


def test_the_two_parts_receipts_taken_at_once_by_two_transactions_deliver_the_recipient(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """The receiver takes one part's receipt while the tick's sweep of early receipts takes
    the other: each must see the other's part once it is its turn, or the recipient stays
    `submitted` for good (seen on PostgreSQL, whose transactions read what was committed)."""
    order, now = started_order(app_client, org_keys, {"departments": ["29"]}, 120)
    rows = first_chunk(order["id"], now, 2)
    with unit_of_work() as session:
        results = [
            Submitted(r.id, f"p1-{r.id}", parts=2, part_ids=(f"p1-{r.id}", f"p2-{r.id}"))
            for r in rows
        ]
        flows.record(session, order["id"], rows, results, now)
    first_done = threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            first_done.wait(10)
            with unit_of_work() as session:
                intake.apply_receipts(
                    session, [Receipt(f"p2-{r.id}", "delivered", None) for r in rows], now
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    other = threading.Thread(target=second)
    other.start()
    with unit_of_work() as session:
        intake.apply_receipts(
            session, [Receipt(f"p1-{r.id}", "delivered", None) for r in rows], now
        )
        session.flush()
        first_done.set()  # the other transaction starts while this one is not committed
        time.sleep(0.5)
    other.join(30)
    assert not other.is_alive()
    assert errors == []
    assert _statuses([r.id for r in rows]) == ["delivered", "delivered"]


def test_an_order_that_cannot_start_holds_up_no_other(
    app_client: ScanningClient, org_keys: dict[str, str], settings: Callable[..., Settings]
) -> None:
    """An order whose start fails (here its quote's criteria damaged in the database) is
    left scheduled and logged; the tick still starts the other due orders."""
    damaged = scheduled_order(app_client, org_keys, {"departments": ["29"]}, 120)
    sound = scheduled_order(app_client, org_keys, {"departments": ["56"]}, 120)
    with unit_of_work() as session:
        quote_id = session.scalar(select(Order.quote_id).where(Order.id == damaged["id"]))
        quotes = Quote.metadata.tables[Quote.__tablename__]  # the raw column: unvalidated
        session.execute(
            update(quotes)
            .where(quotes.c.id == quote_id)
            .values(criteria={"departments": ["not-a-department"]})
        )
    settings(now=max(at_send_time(damaged), at_send_time(sound)).isoformat())
    configure()  # the sound order's batches are enqueued on this home's Redis
    tasks.tick()
    with unit_of_work() as session:
        status = dict(session.execute(select(Order.id, Order.status)).all())
    assert status[damaged["id"]] == "scheduled"  # tried again at the next tick
    assert status[sound["id"]] == "dispatching"
