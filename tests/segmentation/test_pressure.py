"""Contact pressure held in memory: at every instant, the people it leaves out are exactly those
the contact history puts over the cap (2 contacts in 30 days, or one within 7 days)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from datasets import snapshot
from kit.db import unit_of_work
from rental.migrations import upgrade
from segmentation.eligibility import ContactPressure
from segmentation.engine import Engine
from segmentation.models import ContactEvent
from segmentation.repository import ContactHistoryRepository
from tests.segmentation.test_engine import hmac_by_id

NOW = datetime(2026, 11, 26, 10, tzinfo=UTC)
CAP = {"max_messages": 2, "window_days": 30, "min_gap_days": 7}


def over_cap_in_database(engine: Engine, now: datetime) -> set[int]:
    """The rule, computed the plain way from every row of the contact history."""
    window = now - timedelta(days=CAP["window_days"])
    gap = now - timedelta(days=CAP["min_gap_days"])
    with unit_of_work() as session:
        rows = session.execute(
            select(ContactEvent.phone_hmac, ContactEvent.sent_at).where(
                ContactEvent.sent_at >= window
            )
        ).all()
    count: dict[bytes, int] = defaultdict(int)
    last: dict[bytes, datetime] = {}
    for h, at in rows:
        count[bytes(h)] += 1
        last[bytes(h)] = max(at, last.get(bytes(h), at))
    over = [h for h in count if count[h] >= CAP["max_messages"] or last[h] >= gap]
    found = engine.resolve_hmacs_with_keys(over)
    return {int(p) for ids in found.values() for p in ids}


@pytest.fixture(scope="module")
def people(base: snapshot.Snapshot, attributes: pl.DataFrame) -> list[bytes]:
    """Number HMACs of 40 prospects of one department."""
    upgrade()
    ids = attributes.filter(pl.col("department") == "23")["prospect_id"].to_list()[:40]
    mac = hmac_by_id(base)
    return [mac[i] for i in ids]


def test_pressure_follows_the_contact_history_at_every_instant(
    base: snapshot.Snapshot, people: list[bytes]
) -> None:
    engine = Engine(base)
    pressure = ContactPressure(engine)
    rng = np.random.default_rng(3)
    # Contacts from 45 days before NOW to 2 days after, some people twice or three times.
    contacts = [
        (people[int(i)], "pressure-test", NOW - timedelta(hours=float(h)))
        for i, h in zip(rng.integers(0, 20, 60), rng.uniform(-48, 45 * 24, 60), strict=True)
    ]
    with unit_of_work() as session:
        ContactHistoryRepository(session).record(contacts[:40])
    for days in (-3, 0, 5, 8, 20, 31, 40):
        now = NOW + timedelta(days=days)
        with unit_of_work() as session:
            pressure.refresh(session, now - timedelta(days=CAP["window_days"]))
        got = set(pressure.over_cap(now, **CAP).tolist())
        assert got == over_cap_in_database(engine, now), days
    # New contacts are read incrementally, and count at once.
    with unit_of_work() as session:
        ContactHistoryRepository(session).record(
            contacts[40:] + [(people[30], "pressure-test", NOW - timedelta(days=1))]
        )
    with unit_of_work() as session:
        pressure.refresh(session, NOW - timedelta(days=CAP["window_days"]))
    got = set(pressure.over_cap(NOW, **CAP).tolist())
    assert got == over_cap_in_database(engine, NOW)
    assert engine.resolve_hmacs([people[30]])[0] in got


def test_a_contact_committed_late_counts_in_the_exact_view(
    base: snapshot.Snapshot, people: list[bytes]
) -> None:
    """A contact whose id is below the highest one (a transaction that committed late, on
    PostgreSQL) is in the quotes' view when it is within the look-back, and in the view a draw
    takes (full=True) however far below."""
    engine = Engine(base)
    pressure = ContactPressure(engine)
    since = NOW - timedelta(days=CAP["window_days"])

    def contact(session: Session, at_id: int, who: bytes) -> None:
        session.add(ContactEvent(id=at_id, phone_hmac=who, order_id="pressure-late", sent_at=NOW))

    with unit_of_work() as session:
        top = session.scalar(select(func.max(ContactEvent.id))) or 0
        contact(session, top + 10_000, people[35])
    with unit_of_work() as session:
        pressure.refresh(session, since)
        contact(session, top + 9_990, people[37])  # late, within the look-back
    with unit_of_work() as session:
        pressure.refresh(session, since)  # incremental: the quotes' view
    assert engine.resolve_hmacs([people[37]])[0] in set(pressure.over_cap(NOW, **CAP).tolist())
    with unit_of_work() as session:
        contact(session, top + 1, people[36])  # 9,999 ids below the highest one
    with unit_of_work() as session:
        pressure.refresh(session, since, full=True)
    over = set(pressure.over_cap(NOW, **CAP).tolist())
    assert set(engine.resolve_hmacs([people[35], people[36]]).tolist()) <= over
