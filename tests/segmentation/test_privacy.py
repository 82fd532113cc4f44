from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation import privacy
from tests.conftest import ScanningClient, auth

K = 100
SECRET = b"s" * 32


@given(exact=st.integers(0, 10_000_000), material=st.text(max_size=30))
def test_no_shown_count_under_k(exact: int, material: str) -> None:
    shown = privacy.shown_count(exact, K, SECRET, material)
    if exact < K:
        assert shown is None
    if shown is not None:
        assert shown >= K
        assert shown % privacy.step_for(shown) == 0 or shown % 10 == 0


@given(exact=st.integers(100, 1_000_000))
def test_noise_is_deterministic_and_keyed(exact: int) -> None:
    a = privacy.shown_count(exact, K, SECRET, "crit|v0001")
    assert a == privacy.shown_count(exact, K, SECRET, "crit|v0001")
    if a is not None:
        assert abs(a - exact) <= 5 * max(4, exact * 0.002) + privacy.step_for(exact)


def test_noise_differs_between_questions_and_secrets() -> None:
    draws = {privacy.noise(SECRET, f"crit-{i}", 500) for i in range(200)}
    assert len(draws) > 150
    assert privacy.noise(SECRET, "x", 500) != privacy.noise(b"t" * 32, "x", 500)
    mean = sum(privacy.noise(SECRET, f"m{i}", 5000) for i in range(4000)) / 4000
    assert abs(mean) < 1.5  # centred: rounding down, not noise, makes the bias


cells_strategy = st.lists(st.integers(0, 2_000), min_size=2, max_size=12)


@settings(max_examples=300)
@given(counts=cells_strategy)
def test_complementary_suppression_cannot_be_undone(counts: list[int]) -> None:
    cells = [privacy.Cell(str(i), str(i), n) for i, n in enumerate(counts)]
    shown = privacy.protect(cells, K, SECRET, "m")
    hidden = [c for c, s in zip(cells, shown, strict=True) if s.count is None]
    # Nothing under k is ever shown ...
    assert all(s.count is None for c, s in zip(cells, shown, strict=True) if c.exact < K)
    # ... and total minus the shown cells never isolates one hidden cell, nor a group under k.
    if hidden and len(hidden) < len(cells):
        assert len(hidden) >= 2
        assert sum(c.exact for c in hidden) >= K or all(s.count is None for s in shown)


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
