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


class ContentStatus(enum.StrEnum):
    """Where the order's message is in its review (ContentReview is the organisation's mode)."""

    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class HoldKind(enum.StrEnum):
    volume = "volume"  # the segment fell short of 90% of the quantity: a lower volume is offered
    manual = "manual"  # an account manager held it


class OrderAction(enum.StrEnum):
    """What an order's history records (the `action` of its events, shown in the API)."""

    created = "created"
    deposit_invoiced = "deposit_invoiced"
    payment_recorded = "payment_recorded"
    confirmed = "confirmed"
    redrawn = "redrawn"
    scheduled = "scheduled"
    content_approved = "content_approved"
    content_rejected = "content_rejected"
    message_revised = "message_revised"
    cancellation_requested = "cancellation_requested"
    cancellation_declined = "cancellation_declined"
    cancelled = "cancelled"
    dispatch_requested = "dispatch_requested"
    held = "held"
    released = "released"
    volume_accepted = "volume_accepted"
    balance_invoiced = "balance_invoiced"
    credit_note_issued = "credit_note_issued"
    # Written by dispatch and reports.
    dispatch_started = "dispatch_started"
    carrier_unavailable = "carrier_unavailable"
    carrier_recovered = "carrier_recovered"
    sent = "sent"
    report_final = "report_final"


# The actor of what nobody did by hand (the others are roles: client, account_manager, admin).
SYSTEM = "system"

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
