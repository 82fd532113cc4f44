"""The outstanding-request window of a transmitter: up to `size` submit_sm await their answer
at once, answered in any order. Throttling (ESME_RTHROTTLED, ESME_RMSGQFUL) is retried with
back-off inside the batch; other refusals are permanent. A connection lost mid-window makes
the parts still unanswered uncertain (never resent: reported unknown), and the rest of the
batch goes on over a new bind, once."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import smpplib.exceptions

from dispatch.carriers.base import CarrierUnavailable, Feedback, Outgoing, Submitted
from dispatch.carriers.smpp.codec import OK, RX_T_APPN, THROTTLED, refusal, submit_sm, submitted_id
from dispatch.carriers.smpp.link import LOST, Link, Transmitter
from kit.settings import SmppSettings


@dataclass
class _Pending:
    ref: int
    part: int


@dataclass
class _Message:
    ref: int
    parts: list[bytes]
    fields: dict[str, Any]  # the submit_sm fields its parts share
    ids: dict[int, str] = field(default_factory=dict)
    error: str | None = None
    uncertain: bool = False

    @property
    def stopped(self) -> bool:
        """A part was refused or lost: the rest is not sent."""
        return self.uncertain or self.error is not None


class Window:
    """One batch's parts: queued, in flight (by sequence number), answered."""

    def __init__(self, messages: list[Outgoing], size: int) -> None:
        self.size = size
        self.batch: dict[int, _Message] = {}
        self.queue: deque[_Pending] = deque()
        for m in messages:
            parts, fields = submit_sm(m)
            self.batch[m.ref] = _Message(m.ref, parts, fields)
            self.queue.extend(_Pending(m.ref, i) for i in range(len(parts)))
        self.inflight: dict[int, _Pending] = {}
        self.sending: _Pending | None = None  # handed to the socket, no sequence yet
        self.throttled = False

    def busy(self) -> bool:
        return bool(self.queue or self.inflight)

    def turn(self, link: Link) -> None:
        """Fill the window, then read answers until there is room to send more (unless the
        SMSC throttles: then until every answer is in, before backing off)."""
        self.throttled = False
        while self.queue and len(self.inflight) < self.size:
            pending = self.queue.popleft()
            message = self.batch[pending.ref]
            if message.stopped:
                continue
            self.sending = pending
            sequence = link.send(
                "submit_sm", short_message=message.parts[pending.part], **message.fields
            )
            self.inflight[sequence] = pending
            self.sending = None
        while self.inflight:
            if self._answered(link, link.read()) and self._room():
                break  # room in the window: send more before reading on

    def _room(self) -> bool:
        return bool(self.queue) and not self.throttled and len(self.inflight) < self.size

    def _answered(self, link: Link, pdu: Any) -> bool:
        """Take one PDU read on the transmitter; True when it answered one of our submit_sm."""
        command = pdu.command
        if command == "enquire_link":
            link.answer("enquire_link_resp", pdu.sequence)
            return False
        if command == "deliver_sm":  # not for a transmitter: deliver it again
            link.answer("deliver_sm_resp", pdu.sequence, RX_T_APPN)
            return False
        if command == "unbind":
            link.answer("unbind_resp", pdu.sequence)
            raise smpplib.exceptions.ConnectionError("the SMSC unbound")
        if command not in ("submit_sm_resp", "generic_nack"):
            return False
        pending = self.inflight.pop(pdu.sequence, None)
        if pending is None:
            return False
        status = int(pdu.status or 0)
        message = self.batch[pending.ref]
        if status == OK and command == "submit_sm_resp":
            message.ids[pending.part] = submitted_id(pdu)
        elif status in THROTTLED:
            self.queue.appendleft(pending)
            self.throttled = True
        else:
            message.error = refusal(status)
        return True

    def lost(self) -> None:
        """The connection dropped: whatever was unanswered may have reached the SMSC, and is
        never sent again."""
        for p in [*self.inflight.values(), *([self.sending] if self.sending else [])]:
            self.batch[p.ref].uncertain = True
        self.inflight.clear()
        self.sending = None

    def settle(self, reason: str | None) -> tuple[list[Submitted], Feedback]:
        """The outcome per message; raises CarrierUnavailable (with what did go through) when
        part of the batch was not handed over and must wait."""
        done: list[Submitted] = []
        for message in self.batch.values():
            ids = [message.ids[i] for i in sorted(message.ids)]
            if message.uncertain and not ids or 0 < len(ids) < len(message.parts):
                # Lost in flight, or cut short (a part refused, lost or still throttled when
                # the batch gave up): the handset may hold part of it. Never resent, not billed.
                done.append(Submitted(message.ref, None, uncertain=True))
            elif ids:  # every part went out
                done.append(Submitted(message.ref, ids[0], parts=len(ids), part_ids=tuple(ids)))
            elif message.error is not None:
                done.append(Submitted(message.ref, None, error=message.error))
        if reason is None or len(done) == len(self.batch):
            return done, Feedback()  # every message has its outcome (uncertain: unknown)
        raise CarrierUnavailable(
            reason,
            accepted=[s for s in done if not s.uncertain],
            uncertain=[s.ref for s in done if s.uncertain],
        )


def send(
    messages: list[Outgoing], transmitter: Transmitter, settings: SmppSettings
) -> tuple[list[Submitted], Feedback]:
    """Submit a batch through the window over the process's transmitter bind."""
    window = Window(messages, settings.window)
    link = transmitter.bound(settings)  # unavailable: nothing was handed over, all waits
    backoff, waited = 0.05, 0.0
    reconnected = False
    while window.busy():
        try:
            window.turn(link)
        except LOST as exc:
            window.lost()
            transmitter.hang_up()
            reason = f"SMPP connection lost ({type(exc).__name__})"
            if reconnected or not window.queue:
                return window.settle(reason)
            reconnected = True
            try:
                link = transmitter.bound(settings)
            except CarrierUnavailable:
                return window.settle(reason)
            continue
        if window.throttled and not window.inflight:
            if waited >= settings.throttle_wait_seconds:
                return window.settle("the SMSC keeps throttling")
            time.sleep(backoff)
            waited += backoff
            backoff = min(backoff * 2, 2.0)
    return window.settle(None)
