"""The report from the order's tallies is the report from its ledger, field for field: at
every moment of a sent order's life (in progress, final, and at an instant the tallies cannot
place, where the ledger answers), with its failures, expiries, receipts still awaited, STOP
replies and links and control numbers; and the tallies kept as the order was sent are the
ledger folded again from scratch (no recording point forgot them). The age bands tallied at
planning are the base's birth dates on the send day; an order tallied without them (planned
before migration 0014) is reported as before. A STOP counts for an order only when the order
handed its message to that number."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from dispatch import flows, intake
from dispatch.carriers.base import Receipt, Submitted
from dispatch.models import OutcomeTally, PeopleTally, Recipient
from dispatch.repository import Claimed, LedgerRepository, TallyRepository
from kit import clock
from kit.db import unit_of_work
from kit.settings import get_settings
from reports import aggregate, build, tallies
from reports.repository import ReportRepository
from sales.orders.models import Order
from segmentation.models import Suppression
from segmentation.repository import SuppressionRepository
from tests.conftest import ScanningClient
from tests.factories import SentOrder, started_order


def _both(
    order_id: str, now: datetime
) -> tuple[dict[str, object], dict[str, object], set[str] | None]:
    """The report at `now` from the tallies (when they tell) and from the ledger, and the
    statuses the tallies told of (None when they could not tell)."""
    with unit_of_work() as session:
        order = session.get(Order, order_id)
        assert order is not None
        told = tallies.aggregate(session, order, now)
        fast = build.build(session, order, now).model_dump()
        slow = build.build(session, order, now, from_ledger=True).model_dump()
    return fast, slow, None if told is None else {r.status for r in told.rows}


def _instants(sent: SentOrder) -> dict[str, datetime]:
    window = timedelta(hours=get_settings().dispatch.receipt_window_hours)
    return {
        "in progress, every receipt and STOP in": sent.last_submission + timedelta(hours=2),
        "final": sent.last_submission + window + timedelta(days=1),
    }


@pytest.mark.parametrize("moment", ["in progress, every receipt and STOP in", "final"])
def test_the_report_from_tallies_is_the_report_from_the_ledger(
    sent_order: SentOrder, moment: str
) -> None:
    fast, slow, statuses = _both(sent_order.id, _instants(sent_order)[moment])
    assert statuses is not None, "the tallies should tell this report"
    assert fast == slow
    # The mix the comparison covers: it would be a weak test on a dull order.
    assert statuses >= {"delivered", "failed", "expired", "submitted"}
    opt_outs = fast["opt_outs"]
    assert isinstance(opt_outs, dict)
    assert opt_outs["stop_replies"]
    assert opt_outs["stop_links"]


def test_a_report_at_an_instant_the_bins_cannot_place_reads_the_ledger(
    sent_order: SentOrder,
) -> None:
    # Between two chunks: receipts and submissions come after this instant.
    fast, slow, statuses = _both(sent_order.id, sent_order.started + timedelta(minutes=15))
    assert statuses is None
    assert fast == slow


def test_the_tallies_kept_while_sending_are_the_ledger_folded_again(
    sent_order: SentOrder,
) -> None:
    def people() -> list[tuple[str, str, int]]:
        with unit_of_work() as session:
            return sorted(ReportRepository(session).people(sent_order.id))

    kept, planned = _cells(sent_order.id), people()
    with unit_of_work() as session:
        TallyRepository(session).rebuild(sent_order.id)
    assert kept
    assert kept == _cells(sent_order.id)
    with unit_of_work() as session:
        recipients = sum(LedgerRepository(session).counts(sent_order.id).values())
    assert sum(n for _, _, n in planned) == recipients
    assert planned == people()


def _ages_in(report: dict[str, object]) -> dict[str, int | None]:
    cells = report["breakdowns"]["age_band"]  # type: ignore[index]
    return {c["value"]: c["recipients"] for c in cells}


def test_the_age_bands_tallied_at_planning_are_the_base_on_the_send_day(
    sent_order: SentOrder,
) -> None:
    with unit_of_work() as session:
        tallied = ReportRepository(session).ages(sent_order.id)
        ids = ReportRepository(session).prospect_ids(sent_order.id).to_numpy()
    # Sent the day it was planned: the report's figures are those of the base on that day.
    joined = aggregate._ages(ids, sent_order.started.astimezone(clock.PARIS).date())
    assert tallied is not None
    assert sum(tallied.values()) == len(ids)
    assert tallied == {band: n for band, n in joined.items() if n}
    assert len([n for n in tallied.values() if n]) >= 3  # a test over several bands


def test_an_order_tallied_without_age_bands_joins_the_base_as_before(
    sent_order: SentOrder,
) -> None:
    now = _instants(sent_order)["final"]
    before, _, _ = _both(sent_order.id, now)
    with unit_of_work() as session:  # as migration 0014 leaves an order planned before it
        session.execute(
            update(PeopleTally)
            .where(PeopleTally.order_id == sent_order.id)
            .values(age_band=None, ages_on=None)
        )
    fast, slow, statuses = _both(sent_order.id, now)
    assert statuses is not None
    assert fast == slow == before
    with unit_of_work() as session:  # folded again, it stays without: the day is unknown
        TallyRepository(session).rebuild(sent_order.id)
        assert ReportRepository(session).ages(sent_order.id) is None
    assert _ages_in(_both(sent_order.id, now)[0]) == _ages_in(before)


def test_a_stop_from_a_number_the_order_never_reached_is_not_its_opt_out(
    sent_order: SentOrder,
) -> None:
    now = _instants(sent_order)["final"]
    before, _, _ = _both(sent_order.id, now)
    with unit_of_work() as session:
        mine = select(Recipient.phone_hmac).where(
            Recipient.order_id == sent_order.id, Recipient.prospect_id >= 0
        )
        last = Recipient.id.desc()
        refused = session.scalars(
            mine.where(Recipient.status == "failed", Recipient.submitted_at.is_(None))
            .order_by(last)
            .limit(1)
        ).one()
        delivered = session.scalars(
            mine.where(  # the replies' recipients are in no set order (heap order on PG)
                Recipient.status == "delivered",
                Recipient.phone_hmac.not_in(select(Suppression.phone_hmac)),
            )
            .order_by(last)
            .limit(1)
        ).one()
        suppressions = SuppressionRepository(session)
        at = sent_order.last_submission + timedelta(hours=2)
        # Refused on the spot: in the ledger, never handed the message (a STOP it sent answers
        # someone else's), then one who was, not opted out yet.
        assert suppressions.add(refused, "stop_reply", "test", at)
        assert suppressions.add(delivered, "stop_reply", "test", at)
    fast, slow, _ = _both(sent_order.id, now)
    assert fast == slow
    replies = fast["opt_outs"]["stop_replies"]  # type: ignore[index]
    assert replies == before["opt_outs"]["stop_replies"] + 1  # type: ignore[index]


def _cells(order_id: str) -> list[tuple[object, ...]]:
    """The order's outcome tallies as comparable tuples."""
    with unit_of_work() as session:
        rows = session.scalars(select(OutcomeTally).where(OutcomeTally.order_id == order_id))
        return sorted(
            (
                t.batch, t.control, t.calendar, t.status, t.error or "",
                t.submitted_bin or -1, t.final_bin or -1, t.n, t.parts,
                t.first_ms or 0, t.last_ms or 0, t.last_final_ms or 0,
            )
            for t in rows
        )  # fmt: skip


def test_the_tallies_moved_by_each_step_are_the_ledger_folded_again(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """Chunks recorded with refusals and uncertain results, receipts of every kind (one of
    them twice) taking the first submissions of a bin out of it, an opt-out at claim and a
    run that dies with its chunk in flight: the tallies kept step by step are, cell for cell,
    what folding the ledger again gives."""
    order, now = started_order(app_client, org_keys, {"departments": ["35"]}, 120)
    order_id = order["id"]
    with unit_of_work() as session:
        first = session.scalars(
            select(Recipient).where(Recipient.order_id == order_id).order_by(Recipient.id)
        ).first()
        assert first is not None
        SuppressionRepository(session).add(first.phone_hmac, "stop_reply", "test", now)
        assert LedgerRepository(session).claim_batch(order_id, 0, now, "run-1")

    def chunk(at: datetime, size: int, run: str = "run-1") -> list[Claimed]:
        with unit_of_work() as session:
            claimed = flows.claim(session, order_id, 0, run, size, at)
            assert claimed is not None
            return claimed[1]

    def record(rows: list[Claimed], results: list[Submitted], at: datetime) -> None:
        with unit_of_work() as session:
            flows.record(session, order_id, rows, results, at)

    def receipts(given: list[Receipt], at: datetime) -> None:
        with unit_of_work() as session:
            intake.apply_receipts(session, given, at)

    one = chunk(now, 40)  # the one who opted out is left out at claim
    record(
        one,
        [Submitted(r.id, f"a{r.id}", parts=1 + i % 2) for i, r in enumerate(one[:30])]
        + [Submitted(r.id, None, error="refused") for r in one[30:35]]
        + [Submitted(r.id, None, uncertain=True) for r in one[35:]],
        now,
    )
    later = now + timedelta(seconds=7)  # the same five-minute bin
    two = chunk(later, 40)
    record(two, [Submitted(r.id, f"b{r.id}") for r in two], later)
    receipts([Receipt(f"a{r.id}", "delivered") for r in one[:20]], later + timedelta(seconds=1))
    receipts(
        [Receipt(f"a{r.id}", "failed", "absent") for r in one[20:30]]
        + [Receipt(f"b{r.id}", "expired") for r in two[:10]]
        + [Receipt(f"a{one[0].id}", "failed", "absent")],  # a duplicate: nothing changes
        later + timedelta(minutes=6),
    )
    kept = _cells(order_id)
    statuses = {c[3] for c in kept}
    assert statuses >= {"pending", "submitted", "delivered", "failed", "expired", "unknown"}
    assert "opted_out" in statuses
    with unit_of_work() as session:
        TallyRepository(session).rebuild(order_id)
    assert kept == _cells(order_id)

    three = chunk(later + timedelta(minutes=6), 10)  # the run dies with it in flight
    assert len(three) == 10
    dead = later + timedelta(minutes=6, seconds=get_settings().dispatch.stale_seconds + 1)
    with unit_of_work() as session:
        flows.pump(session, order_id, dead)
    with unit_of_work() as session:
        assert LedgerRepository(session).claim_batch(order_id, 0, dead, "run-2")
    four = chunk(dead, 40, "run-2")  # taken up again: the rest of the batch, receipts in
    record(four, [Submitted(r.id, f"c{r.id}") for r in four], dead)
    receipts([Receipt(f"b{r.id}", "delivered") for r in two[10:]], dead + timedelta(seconds=1))
    kept = _cells(order_id)
    assert "interrupted" in {c[4] for c in kept}
    with unit_of_work() as session:
        TallyRepository(session).rebuild(order_id)
    assert kept == _cells(order_id)
