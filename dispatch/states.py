"""The states of a send, one home for each: what can happen to one recipient of an order (and
the named sets of those states that the rest of the code asks about: dispatch counts what it
sent with them, the report and the balance invoice count what was handed over with them), a
batch of the ledger, a carrier as the workers last saw it, and a wave as the customer sees it.
Stored as their values (plain text columns)."""

from __future__ import annotations

import enum


class RecipientStatus(enum.StrEnum):
    """pending -> submitting -> submitted -> delivered | failed | expired. Also the state of
    one part of a concatenated message (submitted, then what its receipt says)."""

    pending = "pending"  # drawn, not yet handed to the carrier
    submitting = "submitting"  # claimed by a batch run, being handed to the carrier
    submitted = "submitted"  # accepted by the carrier, no receipt yet
    delivered = "delivered"
    failed = "failed"
    expired = "expired"
    opted_out = "opted_out"  # said STOP between the draw and the send: never sent
    # Left `submitting` by a crash or lost in flight: perhaps sent, never resent, not billed.
    unknown = "unknown"


R = RecipientStatus
# Handed to the carrier, whatever came back: what is billed and what the report calls submitted.
HANDED_OVER: frozenset[RecipientStatus] = frozenset({R.submitted, R.delivered, R.failed, R.expired})
# A receipt came back: nothing more will change for this recipient.
FINAL: frozenset[RecipientStatus] = frozenset({R.delivered, R.failed, R.expired})
# Not handed to the carrier yet: what a wave has left to send.
UNSENT: frozenset[RecipientStatus] = frozenset({R.pending, R.submitting})


class BatchStatus(enum.StrEnum):
    """pending -> enqueued -> running -> done, or pending again (window closed, carrier down)."""

    pending = "pending"
    enqueued = "enqueued"  # a send task is on its way
    running = "running"  # a run holds it (see Batch.runner, heartbeat_at)
    done = "done"


class CarrierState(enum.StrEnum):
    ok = "ok"
    unavailable = "unavailable"  # since the first failure of a run of them
    unknown = "unknown"  # no contact yet: shown, never stored


class WaveStatus(enum.StrEnum):
    planned = "planned"
    waiting = "waiting"  # the window is closed
    sending = "sending"
    done = "done"
