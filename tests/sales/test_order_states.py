from __future__ import annotations

import itertools

import pytest

from sales.orders.states import (
    TERMINAL,
    TRANSITIONS,
    InvalidTransition,
    OrderStatus,
    check_transition,
)

ALLOWED = {
    ("awaiting_deposit", "confirmed"), ("awaiting_deposit", "cancelled"),
    ("awaiting_deposit", "on_hold"), ("confirmed", "scheduled"), ("confirmed", "cancelled"),
    ("confirmed", "on_hold"), ("scheduled", "dispatching"), ("scheduled", "cancelled"),
    ("scheduled", "on_hold"), ("dispatching", "sent"), ("dispatching", "on_hold"),
    ("sent", "reported"), ("reported", "closed"), ("on_hold", "awaiting_deposit"),
    ("on_hold", "confirmed"), ("on_hold", "scheduled"), ("on_hold", "cancelled"),
}  # fmt: skip


@pytest.mark.parametrize(("current", "target"), list(itertools.product(OrderStatus, OrderStatus)))
def test_every_transition(current: OrderStatus, target: OrderStatus) -> None:
    if (current.value, target.value) in ALLOWED:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition) as err:
            check_transition(current, target)
        assert err.value.status == 409
        assert f"the order is {current.value}" in err.value.detail
        assert err.value.to_dict()["current_status"] == current.value


def test_the_happy_path_is_one_chain() -> None:
    chain = [
        "awaiting_deposit",
        "confirmed",
        "scheduled",
        "dispatching",
        "sent",
        "reported",
        "closed",
    ]
    for a, b in itertools.pairwise(chain):
        check_transition(OrderStatus(a), OrderStatus(b))


def test_final_states_and_one_shot() -> None:
    assert TERMINAL == {OrderStatus.closed, OrderStatus.cancelled}
    # Once dispatching has started, nothing cancels it and nothing sends it again.
    assert OrderStatus.cancelled not in TRANSITIONS[OrderStatus.dispatching]
    assert all(
        OrderStatus.dispatching not in TRANSITIONS[s]
        for s in (OrderStatus.sent, OrderStatus.reported, OrderStatus.closed, OrderStatus.on_hold)
    )
