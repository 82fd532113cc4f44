"""The report's opt-outs found through the order's HMAC index (written at planning) are the
opt-outs its contact history tells: a STOP counts only from a number the order handed its
message to, never from one another order reached, from a recipient refused on the spot, from a
control number or from a number whose HMAC merely begins as a recipient's. An order planned
without the index (before migration 0018) is reported from its contact history, as before."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from datasets.vault import hmac_numbers
from dispatch.models import HmacIndex, Recipient
from dispatch.repository import HmacIndexRepository
from kit import keys
from kit.db import unit_of_work
from kit.settings import get_settings
from reports import aggregate, build, tallies
from reports.repository import ReportRepository
from sales.orders.models import Order
from segmentation.models import Suppression
from segmentation.repository import ContactHistoryRepository, SuppressionRepository
from tests.factories import SentOrder


def _final(sent: SentOrder) -> datetime:
    window = timedelta(hours=get_settings().dispatch.receipt_window_hours)
    return sent.last_submission + window + timedelta(days=1)


def _both_paths(order_id: str, now: datetime) -> tuple[dict[str, int], dict[str, int]]:
    """The tallied report's opt-outs through the index, and through the contact history."""
    with unit_of_work() as session:
        order = session.get(Order, order_id)
        assert order is not None
        told = tallies.aggregate(session, order, now)
        assert told is not None, "the tallies should tell this report"
        assert ReportRepository(session).hmac_index(order_id) is not None
        start = told.first
        history = aggregate.opt_outs(session, order, [], start, told.until)
        return told.opt_outs, history


def test_the_index_finds_the_opt_outs_the_contact_history_tells(
    sent_order: SentOrder, base_numbers: list[str]
) -> None:
    now = _final(sent_order)
    indexed, history = _both_paths(sent_order.id, now)
    assert indexed == history == {"stop_reply": 110, "stop_link": 105}
    at = sent_order.last_submission + timedelta(hours=2)
    with unit_of_work() as session:
        ledger = select(Recipient.phone_hmac).where(Recipient.order_id == sent_order.id)
        mine = set(map(bytes, session.scalars(ledger)))
        controls = list(map(bytes, session.scalars(ledger.where(Recipient.prospect_id < 0))))
        refused = session.scalars(
            ledger.where(
                Recipient.prospect_id >= 0,
                Recipient.status == "failed",
                Recipient.submitted_at.is_(None),
            ).limit(1)
        ).one()
        delivered = session.scalars(
            ledger.where(
                Recipient.status == "delivered",
                Recipient.phone_hmac.not_in(select(Suppression.phone_hmac)),
            )
            .order_by(Recipient.id.desc())
            .limit(1)
        ).one()
        stopped = SuppressionRepository(session)
        # A number another order reached, and this one did not.
        key = keys.hmac_key()
        other = next(
            h for h in hmac_numbers(key, [n.encode() for n in base_numbers]) if h not in mine
        )
        ContactHistoryRepository(session).record([(other, "another-order", at)])
        # A STOP whose first 8 bytes are a delivered recipient's, and the rest not.
        lookalike = delivered[:8] + bytes(b ^ 0xFF for b in delivered[8:])
        for h in [other, lookalike, refused, *controls]:
            assert stopped.add(h, "stop_reply", "test", at)
        assert len(controls) == 2
        # And one this order did hand its message to (delivered, not opted out yet).
        assert stopped.add(delivered, "stop_link", "test", at)
    indexed, history = _both_paths(sent_order.id, now)
    assert indexed == history == {"stop_reply": 110, "stop_link": 106}
    with unit_of_work() as session:
        order = session.get(Order, sent_order.id)
        assert order is not None
        fast = build.build(session, order, now).model_dump()
        slow = build.build(session, order, now, from_ledger=True).model_dump()
    assert fast == slow


def test_an_order_planned_without_the_index_reads_its_contact_history(
    sent_order: SentOrder,
) -> None:
    now = _final(sent_order)
    with unit_of_work() as session:
        session.execute(delete(HmacIndex).where(HmacIndex.order_id == sent_order.id))
    with unit_of_work() as session:
        order = session.get(Order, sent_order.id)
        assert order is not None
        assert ReportRepository(session).hmac_index(sent_order.id) is None
        told = tallies.aggregate(session, order, now)
        assert told is not None
        assert told.opt_outs == {"stop_reply": 110, "stop_link": 105}


def test_the_index_holds_every_recipient_once_and_no_control_number(
    sent_order: SentOrder,
) -> None:
    with unit_of_work() as session:
        index = ReportRepository(session).hmac_index(sent_order.id)
        assert index is not None
        prefixes, prospect_ids = index
        rows = session.execute(
            select(Recipient.prospect_id).where(
                Recipient.order_id == sent_order.id, Recipient.prospect_id >= 0
            )
        ).all()
    assert (prefixes[1:] >= prefixes[:-1]).all()
    assert sorted(prospect_ids.tolist()) == sorted(p for (p,) in rows)
    assert HmacIndexRepository.PART > len(rows)  # one part here: the parts are tested below


def test_an_index_in_several_parts_reads_back_whole_and_sorted(
    sent_order: SentOrder,
) -> None:
    with unit_of_work() as session:
        rows = session.execute(
            select(Recipient.prospect_id, Recipient.phone_hmac).where(
                Recipient.order_id == sent_order.id
            )
        ).all()
        repo = HmacIndexRepository(session)
        repo.PART = 100  # this instance's parts: 15 of them here
        repo.write("split-order", [p for p, _ in rows], [bytes(h) for _, h in rows])
    with unit_of_work() as session:
        whole = ReportRepository(session).hmac_index(sent_order.id)
        split = ReportRepository(session).hmac_index("split-order")
        parts = session.scalars(
            select(HmacIndex.part).where(HmacIndex.order_id == "split-order")
        ).all()
    assert whole is not None
    assert split is not None
    assert len(parts) == 15
    assert split[0].tolist() == whole[0].tolist()
    assert sorted(split[1].tolist()) == sorted(whole[1].tolist())


def test_a_hidden_wave_hides_its_opt_outs_through_the_index_too(sent_order: SentOrder) -> None:
    """While the order sends, a hidden wave's STOPs are not shown (the STOP links here are all
    Martinique's, the replies the metropolitan recipients')."""
    now = _final(sent_order)
    with unit_of_work() as session:
        order = session.get(Order, sent_order.id)
        assert order is not None
        told = tallies.aggregate(session, order, now)
        assert told is not None
        got = {
            calendar: (
                tallies._opt_outs(session, order, hidden, told.first, told.until),
                aggregate.opt_outs(session, order, hidden, told.first, told.until),
            )
            for calendar, hidden in (("972", ["972"]), ("metro", ["metro"]))
        }
    assert got["972"] == ({"stop_reply": 110}, {"stop_reply": 110})
    assert got["metro"] == ({"stop_link": 105}, {"stop_link": 105})
