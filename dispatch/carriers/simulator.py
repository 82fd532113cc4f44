"""The default carrier: deterministic outcomes from a seed, in realistic proportions, with
delivery receipts and occasional STOP replies that enter through the same intake path as a
real carrier's. It never touches a network."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dispatch.carriers.base import (
    CarrierUnavailable,
    Feedback,
    Outgoing,
    Receipt,
    Reply,
    Submitted,
)
from dispatch.states import RecipientStatus as R
from kit import clock
from kit.settings import SimulatorSettings
from sales.messages.service import measure

# Share of each outcome, cumulative: delivered, then unknown number, unreachable, expired.
OUTCOMES = (
    (0.92, R.delivered, None),
    (0.95, R.failed, "unknown_subscriber"),
    (0.98, R.failed, "absent_subscriber"),
    (1.00, R.expired, "validity_period_expired"),
)
STOP_RATE = 0.004  # of delivered messages, answered "STOP"


class Simulator:
    name = "simulator"

    def __init__(self, settings: SimulatorSettings, home: Path) -> None:
        self.settings = settings
        self.log = home / "simulator" / "submitted.log"

    def _log(self, messages: list[Outgoing]) -> None:
        """What "the network" received, for tests that count messages per recipient: the
        ledger references only, never a number."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(f"{m.ref}\n" for m in messages)
        with open(self.log, "a") as f:  # O_APPEND: whole lines from concurrent workers
            f.write(lines)
            f.flush()

    def _inbox(self, messages: list[Outgoing]) -> None:
        """One-time codes as the person's phone would show them, for tests: the challenge
        reference and the text, never the number."""
        if messages:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log.parent / "codes.log", "a") as f:
                f.write("".join(f"{-m.ref}\t{m.text}\n" for m in messages))

    def _uniform(self, what: str, number: str) -> float:
        digest = hashlib.sha256(f"{self.settings.seed}|{what}|{number}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def submit(self, messages: list[Outgoing]) -> tuple[list[Submitted], Feedback]:
        down_until = self.settings.down_until
        if down_until is not None and clock.now() < down_until:
            raise CarrierUnavailable("the simulated carrier is down")
        out, feedback = [], Feedback()
        if messages and messages[0].kind == "code":  # codes go alone, never with a rental
            self._inbox(messages)
        else:
            self._log(messages)
        for m in messages:
            message_id = (
                "sim-" + hashlib.sha256(f"{self.settings.seed}|{m.ref}".encode()).hexdigest()[:20]
            )
            out.append(Submitted(m.ref, message_id, parts=measure(m.text).segments))
            u = self._uniform("outcome", m.number)
            status, error = next((s, e) for bound, s, e in OUTCOMES if u < bound)
            feedback.receipts.append(Receipt(message_id, status, error))
            if status == R.delivered and self._uniform("stop", m.number) < STOP_RATE:
                feedback.replies.append(Reply("STOP", message_id=message_id))
        return out, feedback
