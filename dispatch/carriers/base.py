"""What every carrier adapter offers: submit messages, and say what came back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Outgoing:
    ref: int  # the ledger row: never the number
    number: str  # E.164, decrypted in the worker's memory for this batch only
    sender: str
    text: str
    encoding: str  # GSM-7 or UCS-2
    # "rental", or "code": a one-time code to a person proving their number (subjects/);
    # its ref is then the challenge's id, negated (never a ledger row's).
    kind: str = "rental"


@dataclass(frozen=True)
class Submitted:
    ref: int
    message_id: str | None  # None when refused
    parts: int = 1
    error: str | None = None  # refused: why
    permanent: bool = True  # refused for good (unknown number...) or worth retrying
    # The carrier's id of every part of a concatenated message (receipts come per part).
    part_ids: tuple[str, ...] = ()
    # The carrier may or may not have taken it (the connection dropped before its answer):
    # never sent again, reported unknown, not billed.
    uncertain: bool = False


@dataclass(frozen=True)
class Receipt:
    message_id: str
    status: str  # delivered, failed, expired
    error: str | None = None


@dataclass(frozen=True)
class Reply:
    text: str
    message_id: str | None = None  # the message replied to, when the carrier says
    number: str | None = None  # the sender of the reply, when the carrier says


class CarrierUnavailable(Exception):  # noqa: N818 - the carrier's state, not our error
    """The carrier cannot take messages now (throttled, down, connection lost): a transient
    condition, retried with back-off. `accepted` went through before it happened; `uncertain`
    may or may not have (never resent); the rest of the batch was not handed over."""

    def __init__(
        self,
        reason: str,
        accepted: list[Submitted] | None = None,
        uncertain: list[int] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.accepted = accepted or []
        self.uncertain = uncertain or []


@dataclass
class Feedback:
    """What the carrier will report later (the simulator's delivery receipts and replies)."""

    receipts: list[Receipt] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)


class Carrier(Protocol):
    name: str

    def submit(self, messages: list[Outgoing]) -> tuple[list[Submitted], Feedback]:
        """Submit a batch; the feedback is what the simulator will deliver after a delay
        (real carriers leave it empty: their receipts come through intake)."""
        ...
