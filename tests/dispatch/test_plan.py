"""The plan written at send time, column by column: one ledger row per recipient drawn, in
batches of one calendar each and at most the batch size, a STOP link token for each overseas
recipient and none for the others, the control numbers riding in the metropolitan calendar;
and the reservation left exactly as drawn again (those who left dropped, the others held)."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pytest
from sqlalchemy import select

from dispatch import flows
from dispatch.models import Batch, OutcomeTally, Recipient
from kit.db import unit_of_work
from kit.settings import reset_settings
from segmentation import runtime
from segmentation.models import Reservation
from segmentation.repository import ReservationRepository, SuppressionRepository
from tests.conftest import ScanningClient
from tests.factories import at_send_time, scheduled_order

# Metropolitan, Alsace-Moselle and two overseas calendars in one order.
MIXED = {"departments": ["59", "67", "971", "974"]}
BATCH = 70


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch, base_numbers: list[str]) -> Iterator[str]:
    """Batches of BATCH recipients, and one control number (a number of the base)."""
    monkeypatch.setenv("RENTAL_BATCH_SIZE", str(BATCH))
    monkeypatch.setenv("RENTAL_CONTROL_NUMBERS", json.dumps(base_numbers[:1]))
    reset_settings()
    yield base_numbers[0]
    monkeypatch.undo()
    reset_settings()


def _opt_out(ids: np.ndarray, now: datetime) -> None:
    table = runtime.current().engine.contacts_of(ids)
    with unit_of_work() as session:
        for mac in table.column("phone_hmac").to_pylist():
            SuppressionRepository(session).add(bytes(mac), "stop_reply", "test", now)


def test_the_plan_has_one_row_per_recipient_in_batches_of_one_calendar(
    app_client: ScanningClient, org_keys: dict[str, str], small_batches: str
) -> None:
    order = scheduled_order(app_client, org_keys, MIXED, 400)
    now = at_send_time(order)
    with unit_of_work() as session:
        reserved = set(ReservationRepository(session).held_by(order["id"]))
    left = np.asarray(sorted(reserved)[:10], dtype=np.int64)
    _opt_out(left, now)  # they left between the confirmation and the send
    with unit_of_work() as session:
        assert flows.start(session, order["id"], runtime.current(), now)
    with unit_of_work() as session:
        rows = session.scalars(select(Recipient).where(Recipient.order_id == order["id"])).all()
        batches = session.scalars(select(Batch).where(Batch.order_id == order["id"])).all()
        held = session.execute(
            select(Reservation.prospect_id, Reservation.send_at, Reservation.released_at).where(
                Reservation.order_id == order["id"]
            )
        ).all()
        tallied = session.scalars(
            select(OutcomeTally.n).where(OutcomeTally.order_id == order["id"])
        ).all()
    people = [r for r in rows if r.prospect_id >= 0]
    controls = [r for r in rows if r.prospect_id < 0]
    assert len(people) == 400  # topped up to the quantity, never above
    assert not {r.prospect_id for r in people} & set(left.tolist())  # opt-outs are final
    # The reservation is exactly who is planned, held for this send (come due: held for every
    # send until it is sent), and everyone still eligible stayed in it.
    assert sorted(p for p, _, _ in held) == sorted(r.prospect_id for r in people)
    assert all(s <= now and released is None for _, s, released in held)
    assert reserved - set(left.tolist()) <= {r.prospect_id for r in people}
    # One control number, metropolitan calendar, no civility, no STOP link.
    assert [(c.calendar, c.department, c.sex, c.stop_token) for c in controls] == [
        ("metro", "75", "", None)
    ]
    # Batches: numbered from 0, one calendar each, at most BATCH, sizes as planned.
    assert [b.number for b in sorted(batches, key=lambda b: b.number)] == list(range(len(batches)))
    by_batch: dict[int, list[Recipient]] = {}
    for r in rows:
        by_batch.setdefault(r.batch, []).append(r)
    for b in batches:
        mine = by_batch[b.number]
        assert {r.calendar for r in mine} == {b.calendar}
        assert len(mine) == b.size <= BATCH
    assert {b.calendar for b in batches} == {"metro", "alsace-moselle-6AE", "971", "974"}
    # In calendar then prospect order, batch after batch.
    ordered = sorted(rows, key=lambda r: (r.calendar, r.prospect_id))
    assert [r.batch for r in ordered] == sorted(r.batch for r in rows)
    # A STOP link token for each overseas recipient only, all different, of the alphabet.
    overseas = [r for r in people if r.department in ("971", "974")]
    assert overseas
    assert all(r.stop_token is None for r in rows if r not in overseas)
    tokens = [r.stop_token for r in overseas]
    assert len(set(tokens)) == len(tokens)
    alphabet = set(string.ascii_letters + string.digits)
    assert all(t is not None and len(t) == 8 and set(t) <= alphabet for t in tokens)
    assert all(r.status == "pending" and r.parts == 0 and r.message_id is None for r in rows)
    assert sum(tallied) == len(rows)  # the report's tallies count every row
