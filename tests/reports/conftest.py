"""An order sent in process (no worker), with a known mix of outcomes: the test stands in for
the worker and the carrier, as tests/dispatch/test_flows.py does."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dispatch import flows, intake, windows
from dispatch.carriers.base import Receipt, Reply, Submitted
from dispatch.models import Recipient
from dispatch.repository import Claimed, LedgerRepository
from kit.db import unit_of_work
from kit.settings import get_settings
from sales.orders.models import Order
from sales.orders.states import OrderStatus
from segmentation import runtime
from tests.conftest import ScanningClient
from tests.dispatch.test_flows import at_send_time, scheduled_order

# Departments no other test counts on: STOP opt-outs and contact history here are global.
CRITERIA = {"departments": ["56", "972"]}
QUANTITY = 1500
CHUNK_MINUTES = 10


def submit_result(row: Claimed) -> Submitted:
    if row.id % 37 == 5:
        return Submitted(row.id, None, error="refused")
    return Submitted(row.id, f"m-{row.id}", parts=2)


def receipt_for(row_id: int) -> Receipt | None:
    """The carrier's verdict on a submitted message (None: no receipt ever comes)."""
    mid = f"m-{row_id}"
    if row_id % 41 == 3:
        return None
    if row_id % 10 == 0:
        return Receipt(mid, "failed", "unknown_subscriber")
    if row_id % 10 == 1:
        return Receipt(mid, "failed", "absent_subscriber")
    if row_id % 25 == 2:
        return Receipt(mid, "expired", "validity_period_expired")
    return Receipt(mid, "delivered")


@dataclass
class SentOrder:
    id: str
    started: datetime  # the first submission
    last_submission: datetime
    stop_replies: int
    stop_links: int


def send_in_process(order_id: str, now: datetime, stops: tuple[int, int] = (0, 0)) -> SentOrder:
    """Start the order at `now`, submit its batches chunk by chunk (ten minutes apart), take
    the receipts half an hour after each chunk, some STOP replies and STOP-link visits an hour
    after, and finish it (sent, balance invoiced)."""
    with unit_of_work() as session:
        assert flows.start(session, order_id, runtime.current(), now)
    with unit_of_work() as session:
        numbers = [b.number for b in LedgerRepository(session).batches(order_id)]
    at = now
    for number in numbers:
        with unit_of_work() as session:
            assert LedgerRepository(session).claim_batch(order_id, number, at, "test")
        while True:
            with unit_of_work() as session:
                claimed = flows.claim(session, order_id, number, "test", 200, at)
                if claimed is None:
                    break
                _, rows = claimed
                flows.record(session, order_id, rows, [submit_result(r) for r in rows], at)
                receipts = [x for r in rows if (x := receipt_for(r.id)) is not None]
            with unit_of_work() as session:
                intake.apply_receipts(session, receipts, at + timedelta(minutes=30))
            at += timedelta(minutes=CHUNK_MINUTES)
        with unit_of_work() as session:
            flows.end_batch(session, order_id, number, "test")
    last = at - timedelta(minutes=CHUNK_MINUTES)
    replies, links = stops
    with unit_of_work() as session:
        ledger = list(
            session.scalars(
                select(Recipient).where(Recipient.order_id == order_id, Recipient.prospect_id >= 0)
            )
        )
        delivered_metro = [r for r in ledger if r.status == "delivered" and not r.stop_token]
        overseas = [r for r in ledger if r.stop_token and r.message_id]
        intake.apply_replies(
            session,
            [Reply("STOP", message_id=r.message_id) for r in delivered_metro[:replies]],
            "test",
            last + timedelta(hours=1),
        )
        for r in overseas[:links]:
            assert r.stop_token is not None
            intake.stop_link(session, r.stop_token, last + timedelta(hours=1))
    with unit_of_work() as session:
        assert flows.pump(session, order_id, at) == []  # nothing left: the order is sent
    with unit_of_work() as session:
        order = session.get(Order, order_id)
        assert order is not None
        assert order.status is OrderStatus.sent, "a wave's window was closed: pick another time"
    return SentOrder(order_id, now, last, replies, links)


@pytest.fixture(scope="session")
def sent_order(
    app_client: ScanningClient, org_keys: dict[str, str], base_numbers: list[str]
) -> Iterator[SentOrder]:
    """Acme's order of 1,500 recipients in Morbihan and Martinique, sent, with 110 STOP
    replies and 105 STOP-link visits, and two control numbers riding along."""
    s = get_settings()
    before = s.dispatch.control_numbers
    s.dispatch.control_numbers = base_numbers[:2]
    try:
        order = scheduled_order(app_client, org_keys, CRITERIA, QUANTITY)
        # When the windows of Martinique (UTC-4) and of metropolitan France are both open.
        # Three minutes in: submissions and receipts fall inside the series' buckets, not on
        # their edges (where a bucket rounded to the nearest would look right).
        start = windows.next_opening(windows.calendar_of("972"), at_send_time(order))
        start += timedelta(minutes=3)
        assert windows.is_open(windows.calendar_of("56"), start)
        yield send_in_process(order["id"], start, stops=(110, 105))
    finally:
        s.dispatch.control_numbers = before


def walk_counts(doc: Any, path: str = "") -> Iterator[tuple[str, int]]:
    """Every integer of a report document that is a count of people (not money, not k)."""
    skip = ("cents", "minimum_count", "bucket_minutes", "pauses", "quantity_ordered")
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from walk_counts(value, f"{path}.{key}")
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from walk_counts(value, f"{path}[{i}]")
    elif isinstance(doc, int) and not isinstance(doc, bool):
        if not any(s in path for s in skip):
            yield path, doc
