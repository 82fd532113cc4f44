from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation import privacy
from tests.conftest import ScanningClient, auth

K = 100
SECRET = b"s" * 32
RATE = 1 / 3.25


# The three tests below replace those of the cell-key noise (issue 13): the shown count is now
# the sum of per-person weights, rounded; their intent (nothing under k, deterministic, keyed)
# is kept.
@given(exact=st.integers(0, 10_000_000), share=st.floats(0, 1))
def test_no_shown_count_under_k(exact: int, share: float) -> None:
    sampled = int(exact * share)
    shown = privacy.shown_count(exact, sampled, K, RATE)
    if exact < K:
        assert shown is None
    if shown is not None:
        assert shown >= K
        assert shown % privacy.step_for(shown) == 0 or shown % 10 == 0
        # the nearest multiple of the step to the weighted sum
        assert abs(shown - sampled / RATE) <= privacy.step_for(sampled / RATE) / 2 + 1e-6


def test_the_sample_is_keyed_stable_and_at_its_rate() -> None:
    ids = np.random.default_rng(1).choice(2**62, 200_000, replace=False).astype(np.int64)
    sample = privacy.PersonSample.of(SECRET, RATE)
    flags = sample.flags(ids)
    # stable: a prospect's flag depends on its id alone, not on the set it is counted in
    assert np.array_equal(flags[::-1], sample.flags(ids[::-1]))
    assert np.array_equal(flags[:1000], sample.flags(ids[:1000]))
    assert abs(flags.mean() - RATE) < 0.005
    other = privacy.PersonSample.of(b"t" * 32, RATE).flags(ids)
    assert 0.3 < (flags != other).mean() < 0.55  # another secret, another sample
    assert privacy.PersonSample.of(SECRET, 1.0).flags(ids).all()
    with pytest.raises(ValueError, match="sample rate"):
        privacy.PersonSample.of(SECRET, 0.0)


def test_a_difference_shows_the_same_weights_every_time() -> None:
    """Any pair of sets that differ by a group T shows a difference made of T's weights only,
    whatever the padding: nothing to average (the padding rounds, within one step)."""
    rng = np.random.default_rng(2)
    sample = privacy.PersonSample.of(SECRET, RATE)
    population = rng.choice(2**62, 50_000, replace=False).astype(np.int64)
    target, others = population[:30], population[30:]
    weight_of_t = sample.sampled(target) / RATE
    diffs = []
    for _ in range(400):
        pad = rng.choice(others, 500, replace=False)
        with_t = np.concatenate([pad, target])
        a = sample.sampled(with_t) / RATE
        b = sample.sampled(pad) / RATE
        diffs.append(a - b)
    assert np.allclose(diffs, weight_of_t)


cells_strategy = st.lists(st.integers(0, 2_000), min_size=2, max_size=12)


@settings(max_examples=300)
@given(counts=cells_strategy)
def test_complementary_suppression_cannot_be_undone(counts: list[int]) -> None:
    cells = [privacy.Cell(str(i), str(i), n, n * 3 // 10) for i, n in enumerate(counts)]
    shown = privacy.protect(cells, K, RATE)
    hidden = [c for c, s in zip(cells, shown, strict=True) if s.count is None and c.exact > 0]
    # Nothing under k is ever shown ...
    assert all(s.count is None for c, s in zip(cells, shown, strict=True) if c.exact < K)
    # ... and total minus the shown cells never isolates one person's cell, nor a group under k
    # (hidden empty cells add no one to what is isolated).
    if hidden and any(s.count is not None for s in shown):
        assert len(hidden) >= 2
        assert sum(c.exact for c in hidden) >= K


def _all_counts(doc: Any) -> list[int]:
    if isinstance(doc, dict):
        out = []
        for k, v in doc.items():
            if k in ("shown_count", "count") and isinstance(v, int):
                out.append(v)
            else:
                out.extend(_all_counts(v))
        return out
    if isinstance(doc, list):
        return [n for v in doc for n in _all_counts(v)]
    return []


@settings(max_examples=40, deadline=None)
@given(
    dep=st.sampled_from(["48", "23", "2A", "976", "973", "05", "15"]),
    sex=st.sampled_from(["F", "M"]),
    lo=st.integers(18, 90),
)
def test_no_count_under_k_through_the_api(
    app_client: ScanningClient, org_keys: dict[str, str], dep: str, sex: str, lo: int
) -> None:
    body = {"departments": [dep], "sex": [sex], "age": {"min": lo, "max": min(lo + 15, 105)}}
    r = app_client.post(
        "/v1/quotes", params={"breakdowns": "all"}, json=body, headers=auth(org_keys["acme"])
    )
    assert r.status_code == 201
    assert all(n >= K for n in _all_counts(r.json()))


@st.composite
def hierarchies(draw: Any) -> tuple[list[privacy.Cell], list[privacy.Cell], dict[str, str]]:
    n_parents = draw(st.integers(1, 6))
    children, parent_of = [], {}
    for p in range(n_parents):
        for c in range(draw(st.integers(1, 4))):
            value = f"{p}.{c}"
            children.append(privacy.Cell(value, value, draw(st.integers(0, 400))))
            parent_of[value] = str(p)
    parents = [
        privacy.Cell(str(p), str(p), sum(c.exact for c in children if parent_of[c.value] == str(p)))
        for p in range(n_parents)
    ]
    return parents, children, parent_of


@settings(max_examples=400)
@given(h=hierarchies())
def test_nested_suppression_cannot_be_undone(
    h: tuple[list[privacy.Cell], list[privacy.Cell], dict[str, str]],
) -> None:
    parents, children, parent_of = h
    hp, hc = privacy.suppress_nested(parents, children, parent_of, K)
    assert all(c.value in hc for c in children if c.exact < K)
    assert all(p.value in hp for p in parents if p.exact < K)
    # Total minus the shown parents: nobody, or >= 2 non-empty cells worth >= k.
    hidden_p = [p for p in parents if p.value in hp and p.exact > 0]
    if hidden_p and len(hp) < len(parents):
        assert len(hidden_p) >= 2
        assert sum(p.exact for p in hidden_p) >= K
    for p in parents:
        kids = [c for c in children if parent_of[c.value] == p.value]
        hidden = [c for c in kids if c.value in hc and c.exact > 0]
        if p.value not in hp and hidden:
            # A shown parent minus its shown children: >= 2 hidden children worth >= k.
            assert len(hidden) >= 2
            assert sum(c.exact for c in hidden) >= K
        if p.value in hp and p.exact > 0:
            # A hidden parent can never be rebuilt from its children.
            assert hidden


def test_same_prospects_same_answer_whatever_the_wording(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """Rephrasing a question (a radius covering the same communes, redundant keys, an exclusion
    that removes nobody) gives the very same shown count: nothing to average."""
    key = org_keys["acme"]
    bodies: list[dict[str, Any]] = [
        {"radius": {"commune": "06088", "km": 20}, "age": {"min": 30, "max": 60}},
        {"radius": {"commune": "06088", "km": 20.001}, "age": {"min": 30, "max": 60}},
        {
            "radius": {"commune": "06088", "km": 20},
            "age": {"min": 30, "max": 60},
            "sex": ["F", "M"],
        },
        {
            "radius": {"commune": "06088", "km": 20},
            "age": {"min": 30, "max": 60},
            "exclude": {"departments": ["75"]},
        },
    ]
    counts = {
        app_client.post("/v1/quotes", json=b, headers=auth(key)).json()["shown_count"]
        for b in bodies
    }
    assert len(counts) == 1
    assert next(iter(counts)) is not None


def test_price_does_not_reveal_a_small_zone(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    body = {"departments": ["75", "976"], "age": {"min": 18, "max": 70}}
    q = app_client.post(
        "/v1/quotes", params={"breakdowns": "department"}, json=body, headers=auth(org_keys["am"])
    ).json()
    dep = {c["value"]: c for c in q["breakdowns"]["department"]}
    overseas = [line for line in q["price"]["transport"] if line["zone"] == "overseas"]
    if dep["976"]["suppressed"]:
        assert all(line["messages"] == 0 for line in overseas)


# An empty cell the criteria reach (`Cell.possible`) is protected as a small one: whether it
# holds one person or nobody, the same cells are hidden and the same values shown. The other
# cells are empty or at least k here: where hidden cells add up to exactly k - 1, one person
# more tips any small cell's complement, empty or not (what the rule of k is about).
large_or_empty = st.one_of(st.just(0), st.integers(K, 2_000))


@settings(max_examples=300)
@given(
    counts=st.lists(large_or_empty, min_size=1, max_size=11),
    reached=st.lists(st.booleans(), min_size=11, max_size=11),
)
def test_a_reached_cell_shows_the_same_whether_empty_or_holding_one(
    counts: list[int], reached: list[bool]
) -> None:
    def shown(n: int) -> list[tuple[str, int | None]]:
        cells = [privacy.Cell("y", "y", n, n, possible=True)] + [
            privacy.Cell(str(i), str(i), c, c * 3 // 10, possible=r)
            for i, (c, r) in enumerate(zip(counts, reached, strict=False))
        ]
        return [(s.value, s.count) for s in privacy.protect(cells, K, RATE)]

    assert shown(0) == shown(1)


@settings(max_examples=300)
@given(counts=cells_strategy, reached=st.lists(st.booleans(), min_size=12, max_size=12))
def test_reached_cells_cannot_be_worked_out_either(counts: list[int], reached: list[bool]) -> None:
    """The property above with cells the criteria reach: total minus the shown cells never
    tells that the hidden ones hold fewer than k, nor that a reached one is empty."""
    cells = [
        privacy.Cell(str(i), str(i), n, n * 3 // 10, possible=r)
        for i, (n, r) in enumerate(zip(counts, reached, strict=False))
    ]
    shown = privacy.protect(cells, K, RATE)
    hidden = [c for c, s in zip(cells, shown, strict=True) if s.count is None and c.may_hold]
    if hidden and any(s.count is not None for s in shown):
        assert len(hidden) >= 2
        assert sum(c.exact for c in hidden) >= K


@settings(max_examples=300)
@given(
    sizes=st.lists(st.lists(large_or_empty, min_size=1, max_size=4), min_size=1, max_size=6),
    at=st.integers(0, 5),
)
def test_a_reached_department_shows_the_same_whether_empty_or_holding_one(
    sizes: list[list[int]], at: int
) -> None:
    """Regions and departments: the department "y" the criteria reach, in region `at`."""
    at %= len(sizes)

    def hidden(n: int) -> tuple[set[str], set[str]]:
        children = [privacy.Cell("y", "y", n, possible=True)]
        parent_of = {"y": str(at)}
        for p, kids in enumerate(sizes):
            for c, size in enumerate(kids):
                children.append(privacy.Cell(f"{p}.{c}", f"{p}.{c}", size))
                parent_of[f"{p}.{c}"] = str(p)
        parents = [
            privacy.Cell(
                str(p),
                str(p),
                sum(c.exact for c in children if parent_of[c.value] == str(p)),
                possible=p == at,
            )
            for p in range(len(sizes))
        ]
        return privacy.suppress_nested(parents, children, parent_of, K)

    assert hidden(0) == hidden(1)
    assert "y" in hidden(0)[1]


def test_protect_result_protects_an_empty_cell_only_where_the_criteria_reach() -> None:
    """Sex, with nobody of one sex: reached (no `sex` criterion), the empty cell hides the
    other one with it, as a small one would; unreached (women only), it protects nothing."""
    args: dict[str, Any] = dict(
        total=300,
        total_sampled=100,
        breakdowns={"sex": {"F": 300}},
        sampled={"sex": {"F": 100}},
        cells_of={"sex": [("F", "F"), ("M", "M")]},
        region_of={},
        k=K,
        rate=RATE,
    )
    reached = privacy.protect_result(**args, possible={"sex": {"F", "M"}})
    small = privacy.protect_result(
        **{**args, "total": 301, "breakdowns": {"sex": {"F": 300, "M": 1}}},
        possible={"sex": {"F", "M"}},
    )
    known = privacy.protect_result(**args, possible={"sex": {"F"}})
    assert [c.count for c in reached.breakdowns["sex"]] == [None, None]
    assert [c.count for c in small.breakdowns["sex"]] == [None, None]
    assert [c.count for c in known.breakdowns["sex"]] == [known.total, None]
