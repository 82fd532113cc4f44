from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets import reference, snapshot
from kit.db import unit_of_work
from rental.migrations import upgrade
from segmentation.criteria import Criteria
from segmentation.eligibility import Eligibility
from segmentation.engine import DIMENSIONS, Engine, deterministic_sample
from segmentation.repository import (
    ContactHistoryRepository,
    ReservationRepository,
    SuppressionRepository,
)
from segmentation.runtime import Segmenter
from tests.segmentation import reference_impl

TODAY = date(2026, 11, 26)


@pytest.fixture(scope="module")
def engine(base: snapshot.Snapshot) -> Engine:
    e = Engine(base)
    e.sync_eligibility(TODAY, 3, np.empty(0, dtype=np.int64))
    return e


def eligible_in(attributes: pl.DataFrame, department: str) -> np.ndarray:
    """Ids of a department's prospects who are eligible on TODAY (opt-in, recent interaction)."""
    return attributes.filter(
        (pl.col("department") == department)
        & pl.col("opt_in")
        & (pl.col("last_interaction") >= date(2023, 11, 26))
    )["prospect_id"].to_numpy()


def hmac_by_id(base: snapshot.Snapshot) -> dict[int, bytes]:
    contacts = pq.read_table(base.contacts, columns=["prospect_id", "phone_hmac"])
    ids, macs = (
        contacts.column("prospect_id").to_pylist(),
        contacts.column("phone_hmac").to_pylist(),
    )
    return dict(zip(ids, macs, strict=True))


def _some(values: list[str], max_size: int = 4) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=max_size)


def filters(depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    deps = reference.departments()["code"].to_list()
    regions = sorted(set(reference.departments()["region_code"].to_list()))
    big_communes = reference.communes().sort("population", descending=True)["insee"].head(300)
    parts: dict[str, st.SearchStrategy[Any]] = {
        "sex": _some(["F", "M"], 2),
        "age": st.tuples(st.integers(18, 105), st.integers(18, 105)).map(
            lambda t: {"min": min(t), "max": max(t)}
        ),
        "csp": _some([str(i) for i in range(1, 9)]),
        "regions": _some(regions),
        "departments": _some(deps, 12),
        "communes": _some(big_communes.to_list(), 12),
        "radius": st.tuples(st.sampled_from(big_communes.to_list()), st.floats(1, 200)).map(
            lambda t: {"commune": t[0], "km": round(t[1], 2)}
        ),
        "housing": _some(["owner", "tenant"], 2),
        "dwelling": _some(["house", "flat"], 2),
        "children": st.booleans(),
        "income": _some(reference.income()["code"].to_list()),
        "interests": _some(reference.interests()["code"].to_list()),
    }
    keys = st.lists(st.sampled_from(sorted(parts)), max_size=4, unique=True)

    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        out = {k: draw(parts[k]) for k in draw(keys)}
        if depth == 0 and draw(st.booleans()):
            ex = draw(filters(1))
            if ex:
                out["exclude"] = ex
        return out

    return build()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(criteria=filters())
def test_engine_count_equals_polars_reference(
    engine: Engine, attributes: pl.DataFrame, criteria: dict[str, Any]
) -> None:
    parsed = Criteria.model_validate(criteria)
    got = engine.count(parsed, TODAY, ()).total
    bits = engine.layout.interest_bits
    assert got == reference_impl.count(attributes, parsed.canonical(), TODAY, bits)


def test_breakdowns_add_up_to_total(engine: Engine) -> None:
    r = engine.count(Criteria.model_validate({"regions": ["93", "11"]}), TODAY, DIMENSIONS)
    for dim, cells in r.breakdowns.items():
        assert sum(cells.values()) == r.total, dim
    assert set(r.breakdowns["region"]) == {"93", "11"}


def test_excluded_prospects_are_not_counted(
    base: snapshot.Snapshot, attributes: pl.DataFrame
) -> None:
    engine = Engine(base)
    c = Criteria.model_validate({"departments": ["06"]})
    none = np.empty(0, dtype=np.int64)
    engine.sync_eligibility(TODAY, 3, none)
    before = engine.count(c, TODAY).total
    eligible = eligible_in(attributes, "06")
    engine.sync_eligibility(TODAY, 3, eligible[:37])
    assert engine.count(c, TODAY).total == before - 37
    engine.sync_eligibility(TODAY, 3, eligible[10:50])  # delta: 10 freed, 13 added
    assert engine.count(c, TODAY).total == before - 40
    engine.sync_eligibility(TODAY, 3, none)
    assert engine.count(c, TODAY).total == before
    # A day later the inactivity cutoff moves: a full recompute, same answer as the reference.
    later = date(2027, 3, 1)
    engine.sync_eligibility(later, 3, eligible[:5])
    expected = reference_impl.count(
        attributes, c.canonical(), later, engine.layout.interest_bits, set(eligible[:5].tolist())
    )
    assert engine.count(c, later).total == expected
    # Back in time (a clock set back): rebuilt, still the reference's answer.
    engine.sync_eligibility(TODAY, 3, eligible[:5])
    expected = reference_impl.count(
        attributes, c.canonical(), TODAY, engine.layout.interest_bits, set(eligible[:5].tolist())
    )
    assert engine.count(c, TODAY).total == expected


def test_sample_is_deterministic_and_eligible(engine: Engine) -> None:
    c = Criteria.model_validate({"sex": ["F"], "departments": ["13"]})
    a = engine.sample(c, 500, "order-1", TODAY)
    b = engine.sample(c, 500, "order-1", TODAY)
    other = engine.sample(c, 500, "order-2", TODAY)
    assert len(a) == 500
    assert len(set(a.tolist())) == 500
    assert np.array_equal(a, b)
    assert len(set(a.tolist()) & set(other.tolist())) < 250
    matching = set(engine.matching_ids(c, TODAY).tolist())
    assert set(a.tolist()) <= matching
    shuffled = np.random.default_rng(1).permutation(np.array(sorted(matching)))
    assert np.array_equal(deterministic_sample(shuffled, 500, "order-1"), a)


def test_eligibility_stores_shrink_counts_at_once(
    base: snapshot.Snapshot, attributes: pl.DataFrame
) -> None:
    upgrade()
    engine = Engine(base)
    seg = Segmenter(engine, Eligibility(engine))
    now = datetime(2026, 11, 26, 10, tzinfo=UTC)
    c = Criteria.model_validate({"departments": ["19"]})
    with unit_of_work() as session:
        start = seg.count(session, c, now).total
    ids = eligible_in(attributes, "19").tolist()
    mac = hmac_by_id(base)
    with unit_of_work() as session:
        for pid in ids[:5]:  # opted out
            SuppressionRepository(session).add(mac[pid], "stop_reply", "test", now)
        ContactHistoryRepository(session).record(  # contacted 3 days ago: inside the 7-day gap
            [(mac[pid], "order-x", now - timedelta(days=3)) for pid in ids[5:9]]
        )
        ContactHistoryRepository(session).record(  # contacted 20 days ago once: still eligible
            [(mac[ids[9]], "order-y", now - timedelta(days=20))]
        )
        ReservationRepository(session).reserve("order-z", ids[10:13], now + timedelta(days=2))
    with unit_of_work() as session:
        assert seg.count(session, c, now).total == start - 12
        ReservationRepository(session).release("order-z", now)
    with unit_of_work() as session:
        assert seg.count(session, c, now).total == start - 9
        # An opt-out is final: recording it twice changes nothing.
        assert SuppressionRepository(session).add(mac[ids[0]], "stop_reply", "again", now) is False


def test_sampled_counts_sum_the_counted_prospects(engine: Engine) -> None:
    """The per-row sample byte (computed in numpy, joined by position at load) is the flag of
    that row's prospect: totals and cells count exactly the sampled prospects they hold."""
    c = Criteria.model_validate({"departments": ["06", "13"], "sex": ["M"]})
    r = engine.count(c, TODAY, ("region", "department"))
    ids = engine.matching_ids(c, TODAY)
    sample = engine.person_sample
    assert r.total == len(ids)
    assert r.total_sampled == sample.sampled(ids)
    assert 0 < r.total_sampled < r.total
    dep06 = engine.matching_ids(
        Criteria.model_validate({"departments": ["06"], "sex": ["M"]}), TODAY
    )
    assert r.sampled["department"]["06"] == sample.sampled(dep06)
    assert r.sampled["region"]["93"] == r.total_sampled  # both departments in the same region
    assert r.rate == sample.rate


def test_an_opt_out_committed_late_is_still_applied(
    base: snapshot.Snapshot, attributes: pl.DataFrame
) -> None:
    """Ids can commit out of order (PostgreSQL sequences): a lower id seen after a higher one
    must still be applied."""
    from segmentation.models import Suppression

    upgrade()
    engine = Engine(base)
    seg = Segmenter(engine, Eligibility(engine))
    now = datetime(2026, 11, 26, 10, tzinfo=UTC)
    c = Criteria.model_validate({"departments": ["87"]})
    ids = eligible_in(attributes, "87").tolist()
    mac = hmac_by_id(base)
    with unit_of_work() as session:
        start = seg.count(session, c, now).total
        high = SuppressionRepository(session).stamp() + 500
        session.add(Suppression(id=high, phone_hmac=mac[ids[0]], reason="test", created_at=now))
    with unit_of_work() as session:
        assert seg.count(session, c, now).total == start - 1
        session.add(
            Suppression(id=high - 10, phone_hmac=mac[ids[1]], reason="test", created_at=now)
        )
    with unit_of_work() as session:
        assert seg.count(session, c, now).total == start - 2


def test_sample_never_draws_an_excluded_prospect(base: snapshot.Snapshot) -> None:
    upgrade()
    engine = Engine(base)
    seg = Segmenter(engine, Eligibility(engine))
    now = datetime(2026, 11, 26, 10, tzinfo=UTC)
    c = Criteria.model_validate({"departments": ["29"], "sex": ["F"]})
    with unit_of_work() as session:
        first = seg.sample(session, c, 300, "order-a", now)
        ReservationRepository(session).reserve("order-held", first[:50], now + timedelta(days=1))
    with unit_of_work() as session:
        again = seg.sample(session, c, 300, "order-a", now)
        ReservationRepository(session).release("order-held", now)
    assert not set(first[:50].tolist()) & set(again.tolist())
    assert len(set(first.tolist()) & set(again.tolist())) == 250
