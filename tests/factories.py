"""Data for tests, made the way users and workers make it: quotes and orders through the public
API, paid deposits, orders started and sent in process (the test standing in for the worker and
the carrier), and messages."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from datasets import snapshot
from dispatch import flows, intake, windows
from dispatch.carriers.base import Receipt, Reply, Submitted
from dispatch.models import Recipient
from dispatch.repository import Claimed, LedgerRepository
from kit import clock
from kit.db import unit_of_work
from kit.settings import get_settings
from sales.messages.service import GSM_SINGLE, STOP_TOKEN_LENGTH, compose
from sales.orders.models import Order
from sales.orders.states import OrderStatus
from segmentation import runtime
from tests.conftest import ScanningClient, auth

CHUNK_MINUTES = 10  # send_in_process: the chunks of a batch go out ten minutes apart

# A base longer than the default, as production configures one.
LONG_STOP_LINK_BASE = "https://optout.example-broker.fr/s/"


def overseas_at_the_limit() -> tuple[str, str]:
    """A message whose overseas form, as dispatch composes it with the configured STOP link,
    is one character over a single SMS; and that composed form."""
    base = get_settings().messages.stop_link_base
    link = f"{base}{'k' * STOP_TOKEN_LENGTH}"  # as dispatch builds it
    mentions_length = len(compose("a", "F", metropolitan=False, stop_link=link)) - 1
    text = "a" * (GSM_SINGLE + 1 - mentions_length)
    return text, compose(text, "F", metropolitan=False, stop_link=link)


BROAD = {"sex": ["F"], "age": {"min": 25, "max": 60}}


def send_at(days: float = 3) -> str:
    at = clock.now().astimezone(clock.PARIS) + timedelta(days=days)
    return at.replace(hour=10, minute=0, second=0, microsecond=0).isoformat()


def create_quote(client: ScanningClient, key: str, criteria: Any = None) -> dict[str, Any]:
    r = client.post("/v1/quotes", json=criteria or BROAD, headers=auth(key))
    assert r.status_code == 201, r.text
    return dict(r.json())


def order_body(quote: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "quote_id": quote["id"],
        "quantity": min(quote["shown_count"], 500),
        "message": "Soldes d'hiver : -20% sur tout le magasin avec le code HIVER",
        "sender": "ACME",
        "send_at": send_at(),
    }
    body.update(overrides)
    return body


def create_order(
    client: ScanningClient, key: str, quote: dict[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    quote = quote or create_quote(client, key)
    r = client.post("/v1/orders", json=order_body(quote, **overrides), headers=auth(key))
    assert r.status_code == 201, r.text
    return dict(r.json())


def invoices_of(client: ScanningClient, key: str, order_id: str) -> list[dict[str, Any]]:
    r = client.get("/v1/invoices", params={"order_id": order_id}, headers=auth(key))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def deposit_of(client: ScanningClient, key: str, order_id: str) -> dict[str, Any]:
    return next(i for i in invoices_of(client, key, order_id) if i["kind"] == "deposit")


def pay_deposit(
    client: ScanningClient,
    client_key: str,
    am_key: str,
    order_id: str,
    reference: str | None = None,
) -> Any:
    deposit = deposit_of(client, client_key, order_id)
    return client.post(
        f"/v1/orders/{order_id}/payments",
        json={
            "reference": reference or f"PAY-{order_id}",
            "amount_cents": deposit["amount_incl_vat_cents"],
        },
        headers=auth(am_key),
    )


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def scheduled_order(client: ScanningClient, keys: dict[str, str], criteria: Any, n: int) -> dict:  # type: ignore[type-arg]
    quote = create_quote(client, keys["acme"], criteria)
    order = create_order(client, keys["acme"], quote, quantity=n)
    assert pay_deposit(client, keys["acme"], keys["am"], order["id"]).status_code == 201
    return order


def at_send_time(order: dict) -> datetime:  # type: ignore[type-arg]
    """A moment after the requested send time when metropolitan windows are open."""
    after = datetime.fromisoformat(order["send_at"]) + timedelta(minutes=1)
    return windows.next_opening(windows.calendar_of("75"), after)


def started_order(
    client: ScanningClient, keys: dict[str, str], criteria: Any, n: int
) -> tuple[dict, datetime]:  # type: ignore[type-arg]
    """A paid order, started (claimed, re-validated, planned) a minute after its send time."""
    order = scheduled_order(client, keys, criteria, n)
    now = at_send_time(order)
    with unit_of_work() as session:
        assert flows.start(session, order["id"], runtime.current(), now)
    return order, now


def first_chunk(order_id: str, now: datetime, size: int) -> list[Claimed]:
    """Batch 0 taken by a run and its first chunk claimed (committed as `submitting`)."""
    with unit_of_work() as session:
        assert LedgerRepository(session).claim_batch(order_id, 0, now, "run-1")
        claimed = flows.claim(session, order_id, 0, "run-1", size, now)
        assert claimed is not None
        return claimed[1]


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


def own_base(home: Path) -> Path:
    """This test's own base directory, starting from the shared snapshot (read through a
    symbolic link, never written): a test may refresh it."""
    shared = (home / "base").resolve()
    (home / "base").unlink()
    root = home / "base"
    root.mkdir()
    current = snapshot.current(shared)
    (root / current.version).symlink_to(current.path, target_is_directory=True)
    shutil.copy(shared / "CURRENT", root / "CURRENT")
    return root
