"""What can happen to one recipient of an order, and the named sets of those states that the
rest of the code asks about (one definition: dispatch counts what it sent with it, the report
and the balance invoice count what was handed over with it)."""

from __future__ import annotations

import enum


class RecipientStatus(enum.StrEnum):
    pending = "pending"  # drawn, not yet handed to the carrier
    submitting = "submitting"  # being handed over; after a crash never resent (becomes unknown)
    opted_out = "opted_out"  # said STOP between the draw and the send: never sent
    submitted = "submitted"  # accepted by the carrier, no receipt yet
    delivered = "delivered"
    failed = "failed"
    expired = "expired"
    unknown = "unknown"  # interrupted while handed over: never resent, not billed


R = RecipientStatus
# Handed to the carrier, whatever came back: what is billed and what the report calls submitted.
HANDED_OVER: frozenset[RecipientStatus] = frozenset({R.submitted, R.delivered, R.failed, R.expired})
# A receipt came back: nothing more will change for this recipient.
FINAL: frozenset[RecipientStatus] = frozenset({R.delivered, R.failed, R.expired})
# Not handed over yet: what a wave still has to send.
IN_FLIGHT: frozenset[RecipientStatus] = frozenset({R.pending, R.submitting})
