"""Which reservations leave a prospect out of a send at T: one rule for quotes, draws and the
re-validation at send time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from datasets import snapshot
from kit.db import unit_of_work
from kit.settings import Settings
from rental.migrations import upgrade
from segmentation.criteria import Criteria
from segmentation.eligibility import Eligibility
from segmentation.engine import Engine
from segmentation.repository import ReservationRepository
from segmentation.runtime import Segmenter

NOW = datetime(2026, 11, 26, 10, tzinfo=UTC)
DEPARTMENT = "03"
# Orders of this module, by when they send relative to NOW (days); "sent" is released.
ORDERS = {"sending": -10, "sent": -1, "soon": 2, "mid": 12, "near": 14, "later": 45}


@pytest.fixture
def settings(settings: Callable[..., Settings]) -> Settings:
    return settings(pressure_min_gap_days=7, pressure_window_days=30)


@pytest.fixture
def held(base: snapshot.Snapshot, attributes: pl.DataFrame) -> dict[str, set[int]]:
    """Five people per order of ORDERS, reserved at its send time."""
    upgrade()
    ids = attributes.filter(  # eligible otherwise: opted in, an interaction within 3 years
        (pl.col("department") == DEPARTMENT)
        & pl.col("opt_in")
        & (pl.col("last_interaction") >= date(2024, 1, 1))
    )["prospect_id"].to_list()
    people = {name: set(ids[5 * i : 5 * i + 5]) for i, name in enumerate(ORDERS)}
    with unit_of_work() as session:
        repo = ReservationRepository(session)
        for name, days in ORDERS.items():
            repo.reserve(f"rule-{name}", people[name], NOW + timedelta(days=days))
        repo.release("rule-sent", NOW - timedelta(days=1))
    return people


def test_one_rule_for_every_send_time(
    base: snapshot.Snapshot, held: dict[str, set[int]], settings: Settings
) -> None:
    eligibility = Eligibility(Engine(base))

    def holding(send_in_days: int) -> set[str]:
        """The orders of this module whose people are left out of a send in so many days."""
        with unit_of_work() as session:
            out = set(
                eligibility.reserved_for(
                    session, NOW + timedelta(days=send_in_days), NOW, settings.eligibility
                ).tolist()
            )
        found = {name for name, people in held.items() if people <= out}
        assert not any(people & out for name, people in held.items() if name not in found)
        return found

    # Still sending ten days after its send time: it holds its people for every send until
    # it is sent; a sent order holds no one. The others: within [T - 7 days, T + 30 days].
    assert holding(0) == {"sending", "soon", "mid", "near"}
    assert holding(20) == {"sending", "near", "later"}  # mid sends 8 days before: not held
    assert holding(90) == {"sending"}


def test_an_order_drawing_again_is_not_held_out_by_its_own_reservation_only(
    base: snapshot.Snapshot, held: dict[str, set[int]], settings: Settings
) -> None:
    """Its own people are available to it again; someone another order holds stays held,
    even when the two orders share them."""
    with unit_of_work() as session:  # "near" (in 14 days) shares one person with "sending"
        ReservationRepository(session).reserve(
            "rule-near", [min(held["sending"])], NOW + timedelta(days=14)
        )
    eligibility = Eligibility(Engine(base))
    with unit_of_work() as session:
        out = set(
            eligibility.reserved_for(
                session, NOW, NOW, settings.eligibility, leave_out="rule-sending"
            ).tolist()
        )
        everyone = set(eligibility.reserved_for(session, NOW, NOW, settings.eligibility).tolist())
    shared = min(held["sending"])
    assert out == everyone - (held["sending"] - {shared})
    assert shared in out
    assert held["soon"] <= out


def test_an_order_drawn_again_for_another_send_time_holds_its_people_for_that_one(
    base: snapshot.Snapshot, held: dict[str, set[int]], settings: Settings
) -> None:
    """Kept rows must not keep a send time that means something else: "mid" (in 12 days),
    drawn again for a send in 45 days with one person fewer, no longer holds a send in 2."""
    people = np.asarray(sorted(held["mid"]), dtype=np.int64)
    with unit_of_work() as session:
        ReservationRepository(session).replace(
            "rule-mid", people[1:], NOW + timedelta(days=45), NOW
        )
    eligibility = Eligibility(Engine(base))
    with unit_of_work() as session:
        soon = set(
            eligibility.reserved_for(
                session, NOW + timedelta(days=2), NOW, settings.eligibility
            ).tolist()
        )
        later = set(
            eligibility.reserved_for(
                session, NOW + timedelta(days=40), NOW, settings.eligibility
            ).tolist()
        )
        mine = set(ReservationRepository(session).held_by("rule-mid"))
    assert mine == set(people[1:].tolist())
    assert not held["mid"] & soon
    assert mine <= later


def test_a_quote_does_not_count_people_held_by_an_order_past_its_send_time(
    base: snapshot.Snapshot, held: dict[str, set[int]], settings: Settings
) -> None:
    engine = Engine(base)
    seg = Segmenter(engine, Eligibility(engine))
    criteria = Criteria.model_validate({"departments": [DEPARTMENT]})
    with unit_of_work() as session:
        seg.count(session, criteria, NOW)
    counted = set(seg.engine.matching_ids(criteria, NOW.date()).tolist())
    assert not held["sending"] & counted  # ten days past its send time, still sending
    assert not held["soon"] & counted
    assert held["sent"] <= counted
    assert held["later"] <= counted  # sends beyond the pressure window
