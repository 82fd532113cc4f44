"""The order lifecycle: the one place that says which transitions are allowed.

awaiting_deposit -> confirmed -> scheduled -> dispatching -> sent -> reported -> closed, plus
cancelled (until dispatching starts) and on_hold (the volume check failed, or an account
manager holds the order), from which an order is released back to where it can go on.
"""

from __future__ import annotations

import enum

from kit.errors import Conflict


class OrderStatus(enum.StrEnum):
    awaiting_deposit = "awaiting_deposit"
    confirmed = "confirmed"
    scheduled = "scheduled"
    dispatching = "dispatching"
    sent = "sent"
    reported = "reported"
    closed = "closed"
    cancelled = "cancelled"
    on_hold = "on_hold"


S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.awaiting_deposit: frozenset({S.confirmed, S.cancelled, S.on_hold}),
    S.confirmed: frozenset({S.scheduled, S.cancelled, S.on_hold}),
    S.scheduled: frozenset({S.dispatching, S.cancelled, S.on_hold}),
    # The one-shot send: once claimed, an order is sent or held (volume check), never cancelled.
    S.dispatching: frozenset({S.sent, S.on_hold}),
    S.sent: frozenset({S.reported}),
    S.reported: frozenset({S.closed}),
    S.closed: frozenset(),
    S.cancelled: frozenset(),
    # Released to where it can go on, accepted at a lower volume, or cancelled.
    S.on_hold: frozenset({S.awaiting_deposit, S.confirmed, S.scheduled, S.cancelled}),
}
TERMINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


class InvalidTransition(Conflict):
    code = "invalid_transition"


def check_transition(current: OrderStatus, target: OrderStatus) -> None:
    """Raise a 409 that names the current state when `current -> target` is not allowed."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none: it is final"
        raise InvalidTransition(
            f"the order is {current.value}; it cannot become {target.value} "
            f"(possible next states: {allowed})",
            current_status=current.value,
        )
