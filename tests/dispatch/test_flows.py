"""The send flow step by step, in process, against the real database and base: claims that
hold when run twice, receipts out of order, STOP replies and links."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from dispatch import flows, intake, waves, windows
from dispatch.carriers.base import CarrierUnavailable, Receipt, Reply, Submitted
from dispatch.models import EarlyReceipt, Recipient
from dispatch.repository import LedgerRepository
from kit import keys
from kit.db import unit_of_work
from kit.settings import get_settings
from sales.orders.models import Order
from segmentation import runtime
from segmentation.models import ContactEvent, Suppression
from segmentation.repository import SuppressionRepository
from tests.conftest import ScanningClient, auth
from tests.factories import at_send_time, first_chunk, scheduled_order, started_order


def test_an_order_is_started_once(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    order = scheduled_order(app_client, org_keys, {"departments": ["35"]}, 150)
    now = at_send_time(order)
    with unit_of_work() as session:
        before = datetime.fromisoformat(order["send_at"]) - timedelta(minutes=1)
        assert order["id"] not in flows.due(session, before)
        assert order["id"] in flows.due(session, now)
    with unit_of_work() as session:
        assert flows.start(session, order["id"], runtime.current(), now) is True
    with unit_of_work() as session:  # the same order claimed again: refused
        assert flows.start(session, order["id"], runtime.current(), now) is False
        assert order["id"] not in flows.due(session, now)
        rows = session.scalar(select(func.count()).where(Recipient.order_id == order["id"]))
        assert rows == 150
    r = app_client.post(f"/v1/orders/{order['id']}/dispatch", headers=auth(org_keys["am"]))
    assert r.status_code == 409
    assert r.json()["current_status"] == "dispatching"


def test_a_batch_is_claimed_once_and_receipts_may_come_first(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    order, now = started_order(app_client, org_keys, {"departments": ["44"]}, 120)
    with unit_of_work() as session:
        ledger = LedgerRepository(session)
        assert ledger.claim_batch(order["id"], 0, now, "run-1") is True
        assert ledger.claim_batch(order["id"], 0, now, "run-2") is False  # a second delivery
    # A receipt for a message whose submit response is not recorded yet.
    with unit_of_work() as session:
        intake.apply_receipts(session, [Receipt("early-1", "delivered")], now)
        assert (session.scalar(select(func.count()).select_from(EarlyReceipt)) or 0) >= 1
    with unit_of_work() as session:
        assert flows.claim(session, order["id"], 0, "run-2", 2, now) is None  # not its batch
        claimed = flows.claim(session, order["id"], 0, "run-1", 2, now)
        assert claimed is not None
        _, rows = claimed
        assert [r.status for r in rows] == ["submitting", "submitting"]
        flows.record(
            session,
            order["id"],
            rows,
            [Submitted(rows[0].id, "early-1"), Submitted(rows[1].id, None, error="refused")],
            now,
        )
    with unit_of_work() as session:
        first, second = LedgerRepository(session).by_ids([rows[0].id, rows[1].id])
        assert first.status == "delivered"  # the early receipt was applied
        assert second.status == "failed"
        # Duplicates and unknown ids are harmless.
        assert intake.apply_receipts(session, [Receipt("early-1", "failed")], now) == 0
        assert LedgerRepository(session).by_ids([rows[0].id])[0].status == "delivered"


@pytest.mark.parametrize(
    ("text", "stop"),
    [
        ("STOP", True),
        ("stop", True),
        (" Stop SMS ", True),
        ("ARRÊT", True),
        ("arreter", True),
        ("Unsubscribe please", True),
        ("stop!", True),
        ("Désinscription", True),
        ("merci", False),
        ("non-stop deals?", False),
        ("", False),
    ],
)
def test_stop_keywords(text: str, stop: bool) -> None:
    assert intake.is_stop(text) is stop


def test_stop_replies_and_links_opt_out_at_once(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    order, now = started_order(app_client, org_keys, {"departments": ["974"]}, 120)
    with unit_of_work() as session:
        rows = list(
            session.scalars(select(Recipient).where(Recipient.order_id == order["id"]).limit(2))
        )
        assert all(r.stop_token and len(r.stop_token) == 8 for r in rows)  # overseas: a link
        LedgerRepository(session).mark(
            [{"id": rows[0].id, "status": "submitted", "message_id": "m-stop"}]
        )
        macs = [rows[0].phone_hmac, rows[1].phone_hmac]
        token = rows[1].stop_token
    with unit_of_work() as session:
        added = intake.apply_replies(
            session,
            [Reply("Stop", message_id="m-stop"), Reply("merci", message_id="m-stop")],
            "test",
            now,
        )
        assert added == 1
    page = app_client.get(f"/s/{token}")
    assert page.status_code == 200
    assert "Désinscription confirmée" in page.text
    assert app_client.get("/s/zzzzzzzz").status_code == 404
    with unit_of_work() as session:
        found = set(
            session.scalars(select(Suppression.phone_hmac).where(Suppression.phone_hmac.in_(macs)))
        )
        assert {bytes(m) for m in found} == {bytes(m) for m in macs}
    # The carrier posts receipts and replies with its secret only.
    carrier = get_settings().carriers.name
    r = app_client.post(f"/v1/carriers/{carrier}/replies", json=[{"text": "STOP"}])
    assert r.status_code == 401


def test_carrier_webhooks_need_their_secret(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    order, now = started_order(app_client, org_keys, {"departments": ["33"]}, 100)
    with unit_of_work() as session:
        row = session.scalars(select(Recipient).where(Recipient.order_id == order["id"])).first()
        assert row is not None
        LedgerRepository(session).mark(
            [{"id": row.id, "status": "submitted", "message_id": "hook-1"}]
        )
        ref = row.id
    body = [
        {"message_id": "hook-1", "status": "delivered"},
        {"message_id": "nope", "status": "failed"},
    ]
    url = "/v1/carriers/http/receipts"
    secret = keys.issue_carrier_secret("http")  # the operator's `rental carriers secret http`
    assert app_client.post(url, json=body, headers={"X-Carrier-Secret": "wrong"}).status_code == 401
    r = app_client.post(url, json=body, headers={"X-Carrier-Secret": secret})
    assert r.status_code == 200
    assert r.json() == {"received": 2, "applied": 1}
    again = app_client.post(url, json=body[:1], headers={"X-Carrier-Secret": secret})
    assert again.json()["applied"] == 0  # a duplicate changes nothing
    with unit_of_work() as session:
        assert LedgerRepository(session).by_ids([ref])[0].status == "delivered"
    bad = app_client.post(
        url, json=[{"message_id": "x", "status": "lost"}], headers={"X-Carrier-Secret": secret}
    )
    assert bad.status_code == 422


def test_a_chunk_in_flight_is_submitting_to_readers_and_never_claimed_twice(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """A chunk is claimed by raising its batch's watermark, the recipients' rows untouched: the
    ledger's counts still say they are being handed over, and the next claim takes the next
    recipients."""
    order, now = started_order(app_client, org_keys, {"departments": ["29"]}, 120)
    with unit_of_work() as session:
        total = sum(LedgerRepository(session).counts(order["id"]).values())
    rows = first_chunk(order["id"], now, 10)
    with unit_of_work() as session:
        counts = LedgerRepository(session).counts(order["id"])
        claimed = flows.claim(session, order["id"], 0, "run-1", 10, now)
    assert counts == {"submitting": 10, "pending": total - 10}
    assert claimed is not None
    assert len(claimed[1]) == 10
    assert not {r.id for r in claimed[1]} & {r.id for r in rows}
    assert min(r.id for r in claimed[1]) > max(r.id for r in rows)


def test_someone_who_opts_out_after_the_plan_is_not_claimed_for_sending(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    order, now = started_order(app_client, org_keys, {"departments": ["22"]}, 120)
    with unit_of_work() as session:
        first = session.scalars(
            select(Recipient).where(Recipient.order_id == order["id"]).order_by(Recipient.id)
        ).first()
        assert first is not None
        opted_out, mac = first.id, first.phone_hmac
        SuppressionRepository(session).add(mac, "stop_reply", "test", now)
    rows = first_chunk(order["id"], now, 10)
    assert rows  # the others are claimed, the one who opted out is not
    assert opted_out not in [r.id for r in rows]
    assert all(r.status == "submitting" for r in rows)
    with unit_of_work() as session:
        assert LedgerRepository(session).by_ids([opted_out])[0].status == "opted_out"


def test_an_opt_out_or_a_closing_window_between_reading_and_claiming_a_chunk_holds(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """The transaction recording a chunk reads the next one before its first write and claims
    it after (it may wait for SQLite's write lock in between): someone who opted out meanwhile
    is still left out, and a window closed meanwhile claims nothing."""
    order, now = started_order(app_client, org_keys, {"departments": ["56"]}, 120)
    first_chunk(order["id"], now, 10)
    with unit_of_work() as session:
        ahead = flows.look_ahead(session, order["id"], 0, 10, now)
    assert len(ahead.rows) == 10
    assert not ahead.suppressed
    opted_out = ahead.rows[0]
    with unit_of_work() as session:  # a STOP reply, applied by another transaction meanwhile
        SuppressionRepository(session).add(opted_out.phone_hmac, "stop_reply", "test", now)
    with unit_of_work() as session:
        claimed = flows.take(session, order["id"], 0, "run-1", now, ahead)
    assert claimed is not None
    assert [r.id for r in claimed[1]] == [r.id for r in ahead.rows[1:]]
    calendar = windows.calendar_of("56")
    closed = next(
        at
        for at in (now + timedelta(minutes=30 * k) for k in range(1, 200))
        if not windows.is_open(calendar, at)
    )
    with unit_of_work() as session:
        ahead = flows.look_ahead(session, order["id"], 0, 10, now)  # read while open
        assert ahead.rows
        assert flows.take(session, order["id"], 0, "run-1", closed, ahead) is None
    with unit_of_work() as session:
        ledger = LedgerRepository(session)
        assert ledger.by_ids([opted_out.id])[0].status == "opted_out"
        batch = ledger.batch(order["id"], 0)
    assert batch is not None
    assert batch.claimed_to == claimed[1][-1].id  # nothing claimed at the closed window
    assert batch.status == "pending"  # for the next opening


def test_stop_replies_from_overseas_numbers_in_any_format(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """Carriers give the sender as international digits without '+', or in national format:
    a Reunion number's STOP opts it out either way."""
    from datasets.vault import decrypt_number
    from segmentation.repository import SuppressionRepository

    order, now = started_order(app_client, org_keys, {"departments": ["974"]}, 120)
    with unit_of_work() as session:
        rows = list(
            session.scalars(
                select(Recipient).where(
                    Recipient.order_id == order["id"], Recipient.prospect_id >= 0
                )
            )
        )[:2]
        key = keys.vault_key()
        numbers = [decrypt_number(key, r.phone_enc, r.prospect_id) for r in rows]
        assert all(n.startswith("+262") for n in numbers)
        replies = [
            Reply("STOP", number=numbers[0].lstrip("+")),  # 262692...
            Reply("Stop", number="0" + numbers[1][4:]),  # 0692... (national)
        ]
        assert intake.apply_replies(session, replies, "smpp", now) == 2
        assert SuppressionRepository(session).among([r.phone_hmac for r in rows]) == {
            r.phone_hmac for r in rows
        }


def test_a_receipt_kept_in_a_race_with_its_submission_is_applied_by_the_sweep(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """The receipt is kept as early by one transaction while another records the submission
    without seeing it (PostgreSQL's READ COMMITTED): the scheduler's sweep applies it."""
    order, now = started_order(app_client, org_keys, {"departments": ["45"]}, 110)
    [row] = first_chunk(order["id"], now, 1)
    with unit_of_work() as session:  # the receipt first: its message id is not recorded yet
        intake.apply_receipts(session, [Receipt("race-1", "delivered")], now)
        intake.apply_receipts(session, [Receipt("never-1", "delivered")], now)
    with unit_of_work() as session:  # the submission, recorded without seeing that receipt
        LedgerRepository(session).mark_submitted([(row.id, "race-1", 1)], now)
    with unit_of_work() as session:
        assert intake.sweep_early(session, now + timedelta(seconds=2)) == 1
    with unit_of_work() as session:
        status = session.scalar(select(Recipient.status).where(Recipient.id == row.id))
        left = set(session.scalars(select(EarlyReceipt.message_id)))
    assert status == "delivered"
    assert "race-1" not in left
    assert "never-1" in left  # still waiting, until the receipt window has passed
    with unit_of_work() as session:
        intake.sweep_early(session, now + timedelta(hours=73))
        assert "never-1" not in set(session.scalars(select(EarlyReceipt.message_id)))


def test_those_in_flight_when_a_worker_died_count_as_contacted(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """A run that dies leaves its chunk `submitting`: those messages may have reached the
    network. When the batch is recovered they become unknown, are never resent, and enter the
    contact history, so the pressure cap counts them."""
    order, now = started_order(app_client, org_keys, {"departments": ["80"]}, 120)
    rows = first_chunk(order["id"], now, 10)
    assert len(rows) == 10  # the run dies here, before recording anything
    later = now + timedelta(seconds=get_settings().dispatch.stale_seconds + 1)
    with unit_of_work() as session:
        flows.pump(session, order["id"], later)
    with unit_of_work() as session:
        ledger = LedgerRepository(session).by_ids([r.id for r in rows])
        history = session.execute(
            select(ContactEvent.phone_hmac, ContactEvent.sent_at).where(
                ContactEvent.order_id == order["id"]
            )
        ).all()
    assert {r.status for r in ledger} == {"unknown"}
    assert sorted(bytes(h) for h, _ in history) == sorted(r.phone_hmac for r in rows)
    assert {t for _, t in history} == {later}


def test_those_in_flight_when_the_carrier_failed_count_as_contacted(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """The carrier fails mid-chunk: what it took is submitted, what it may have taken is
    unknown and enters the contact history (the pressure cap counts it), the rest waits."""
    order, now = started_order(app_client, org_keys, {"departments": ["80"]}, 120)
    rows = first_chunk(order["id"], now, 10)
    took, maybe = rows[:3], rows[3:5]
    failure = CarrierUnavailable(
        "connection lost",
        accepted=[Submitted(r.id, f"m-{r.id}") for r in took],
        uncertain=[r.id for r in maybe],
    )
    with unit_of_work() as session:
        flows.carrier_unavailable(session, order["id"], 0, "run-1", rows, failure, "sim", now)
    with unit_of_work() as session:
        status = {r.id: r.status for r in LedgerRepository(session).by_ids([r.id for r in rows])}
        history = session.scalars(
            select(ContactEvent.phone_hmac).where(ContactEvent.order_id == order["id"])
        ).all()
    assert [status[r.id] for r in took] == ["submitted"] * 3
    assert [status[r.id] for r in maybe] == ["unknown"] * 2
    assert {status[r.id] for r in rows[5:]} == {"pending"}
    assert sorted(bytes(h) for h in history) == sorted(r.phone_hmac for r in took + maybe)


def test_a_hidden_wave_follows_the_order_as_a_whole(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """A wave too small to show is not shown `done` while the rest of the order is still to
    send: its own progress would tell that its few people got the message."""
    order, now = started_order(app_client, org_keys, {"departments": ["76", "976"]}, 300)
    with unit_of_work() as session:
        mayotte = [b for b in LedgerRepository(session).batches(order["id"]) if b.calendar == "976"]
    assert mayotte
    for batch in mayotte:  # Mayotte (UTC+3) is sent first, in full
        with unit_of_work() as session:
            assert LedgerRepository(session).claim_batch(order["id"], batch.number, now, "run")
        while True:
            with unit_of_work() as session:
                claimed = flows.claim(session, order["id"], batch.number, "run", 100, now)
                if claimed is None:
                    break
                _, rows = claimed
                results = [Submitted(r.id, f"w-{r.id}", parts=1) for r in rows]
                flows.record(session, order["id"], rows, results, now)
        with unit_of_work() as session:
            flows.end_batch(session, order["id"], batch.number, "run")
    with unit_of_work() as session:
        order_row = session.get(Order, order["id"])
        assert order_row is not None
        shown = {w.calendar: w for w in waves.for_order(session, order_row, now)}
        left = LedgerRepository(session).counts(order["id"]).get("pending", 0)
    assert left > 0  # the metropolitan wave is still to send
    assert shown["976"].recipients is None  # under the minimum
    assert shown["976"].status != "done"
    assert {w.status for w in shown.values() if w.recipients is None} <= {"sending", "waiting"}
