"""The suppression of a report's counts: the rule of segmentation.privacy, on a tree of exact
counts (recipients -> submitted -> delivered, failed -> reasons...)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation.privacy import Node, suppress_counts, suppress_possible, suppress_tree

K = 100


def outcome(delivered: int, refused: int, unknown_number: int, expired: int) -> Node:
    failed = Node(
        "failed",
        refused + unknown_number,
        (Node("refused", refused), Node("unknown_number", unknown_number)),
    )
    submitted = Node(
        "submitted",
        delivered + failed.exact + expired,
        (Node("delivered", delivered), failed, Node("expired", expired)),
    )
    return Node("recipients", submitted.exact, (submitted, Node("unknown", 0)))


def test_small_counts_are_hidden_with_a_complement() -> None:
    hidden = suppress_tree(outcome(5_000, 30, 400, 300), K)
    assert "refused" in hidden  # under k
    assert "unknown_number" in hidden  # else failed - unknown_number = refused
    assert not hidden & {"recipients", "submitted", "delivered", "failed", "expired"}


def test_a_group_under_k_is_not_left_to_subtraction() -> None:
    # Failed (50) and expired (40) are both small, and together under k: the delivered count
    # would give them away (submitted - delivered = 90), so it is hidden as well.
    hidden = suppress_tree(outcome(1_000, 20, 30, 40), K)
    assert {"refused", "unknown_number", "failed", "expired", "delivered"} <= hidden
    assert not hidden & {"recipients", "submitted"}


def test_zero_is_shown_and_protects_nothing() -> None:
    hidden = suppress_tree(outcome(1_000, 0, 0, 0), K)
    assert hidden == set()


def test_a_public_count_is_never_the_complement() -> None:
    # The billed volume is on the invoice: it cannot hide the 3 who opted out before sending,
    # so the recipients' total is hidden instead.
    tree = Node("recipients", 1_000, (Node("submitted", 997), Node("opted_out", 3)))
    assert suppress_tree(tree, K, public=("submitted",)) == {"opted_out", "recipients"}
    assert suppress_tree(tree, K) == {"opted_out", "submitted"}


def test_flat_counts_and_time_series() -> None:
    assert suppress_counts({"a": 500, "b": 40, "c": 300}, K) == {"a": 500, "b": None, "c": None}
    assert suppress_counts({"a": 500, "b": 0}, K) == {"a": 500, "b": None}
    assert suppress_counts({"a": 500, "b": 0}, K, zeros_shown=True) == {"a": 500, "b": 0}


def report_tree(d: int, r1: int, r2: int, r3: int, e: int, a: int, u: int, o: int, p: int) -> Node:
    failed = Node("failed", r1 + r2 + r3, (Node("r1", r1), Node("r2", r2), Node("r3", r3)))
    parts = (Node("delivered", d), failed, Node("expired", e), Node("awaiting", a))
    submitted = Node("submitted", sum(x.exact for x in parts), parts)
    top = (submitted, Node("unknown", u), Node("opted_out", o), Node("pending", p))
    return Node("recipients", sum(x.exact for x in top), top)


small = st.integers(0, 150)


@settings(max_examples=400, deadline=None)
@given(st.tuples(st.integers(0, 5000), small, small, small, small, small, small, small, small))
def test_no_hidden_count_can_be_worked_out_from_what_is_shown(
    counts: tuple[int, int, int, int, int, int, int, int, int],
) -> None:
    """Whatever the outcome: every count under k is hidden (the public ones aside), and under
    every shown count the hidden parts are none, or two or more adding up to k or more; a
    public count's parts only escape that when together they are under k (the invoice gives
    their total away)."""
    tree = report_tree(*counts)
    public = {"recipients", "submitted"}
    hidden = suppress_tree(tree, K, public=tuple(public))
    assert not hidden & public
    for node in tree.walk():
        if 0 < node.exact < K and node.name not in public:
            assert node.name in hidden
        if node.name in hidden or not node.parts:
            continue
        gone = [x for x in node.parts if x.name in hidden and x.exact > 0]
        if not gone:
            continue
        open_parts = sum(x.exact for x in node.parts if x.name not in public)
        if node.name in public and open_parts < K:
            continue  # the contractual exception: only the split is protected
        assert len(gone) >= 2
        assert sum(x.exact for x in gone) >= K


def test_an_empty_cell_that_could_hold_someone_is_protected_as_a_small_one() -> None:
    counts = {"a": 500, "b": 0, "c": 300}
    assert suppress_possible(counts, K, ()) == {"a": 500, "b": None, "c": 300}
    # b could hold someone: it reads as it would with 30 people in it.
    assert suppress_possible(counts, K, ("b",)) == {"a": 500, "b": None, "c": None}
    assert suppress_possible({"a": 500, "b": 30, "c": 300}, K, ("b",)) == {
        "a": 500,
        "b": None,
        "c": None,
    }
    # Small cells already protected: the empty one changes nothing.
    assert suppress_possible({"a": 500, "b": 0, "c": 40, "d": 70}, K, ("b",)) == {
        "a": 500,
        "b": None,
        "c": None,
        "d": None,
    }
