"""SMPP 3.4 carrier (smpplib for the PDUs, our own read loop for windowing).

Submissions go over a transmitter bind kept open per worker process and checked with
enquire_link when it has been idle. Each message is split into parts with a concatenation
header (UDH, 8-bit reference) in GSM-7 (data_coding 0, unpacked septets) or UCS-2
(data_coding 8); up to `smpp_window` submit_sm are outstanding at once and answered in any
order. Throttling (ESME_RTHROTTLED, ESME_RMSGQFUL) is retried with back-off inside the batch;
other refusals are permanent. A connection lost mid-window makes the parts still unanswered
uncertain (never resent: reported unknown), and the rest of the batch goes on over a new bind.

Delivery receipts and replies (deliver_sm) arrive on a receiver bind opened by the periodic
`dispatch.receive` task; each one is acknowledged only after it was recorded, so a crash
leaves it with the SMSC, which delivers it again.
"""

from __future__ import annotations

import logging
import os
import random
import re
import select
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from dispatch.carriers.base import CarrierUnavailable, Feedback, Outgoing, Receipt, Reply, Submitted
from dispatch.carriers.guard import refuse_synthetic_base_off_loopback
from kit.errors import ConfigurationError
from kit.settings import get_settings
from sales.messages.service import GSM_MULTI, GSM_SINGLE, UCS2_MULTI, UCS2_SINGLE, parts_of

log = logging.getLogger(__name__)
# smpplib dumps every PDU in hex at DEBUG, numbers included: never let those records exist.
WIRE_LOGGER = "dispatch.smpp.wire"
logging.getLogger(WIRE_LOGGER).setLevel(logging.WARNING)

OK = 0x00
RX_T_APPN = 0x64  # ESME_RX_T_APPN: temporary application error, the SMSC delivers again
CLOSED, OPEN = 0, 1  # smpplib client states before a bind
THROTTLED = {0x58: "ESME_RTHROTTLED", 0x14: "ESME_RMSGQFUL"}
PERMANENT = {
    0x0A: "invalid_source",  # ESME_RINVSRCADR
    0x0B: "invalid_destination",  # ESME_RINVDSTADR
    0x01: "invalid_length",  # ESME_RINVMSGLEN
    0x45: "submit_failed",  # ESME_RSUBMITFAIL
    0x08: "smsc_error",  # ESME_RSYSERR
}
# Bind refusals that point at the account's settings: ESME_RBINDFAIL, ESME_RINVPASWD,
# ESME_RINVSYSID, ESME_RINVSYSTYP.
BIND_CREDENTIALS = {0x0D, 0x0E, 0x0F, 0x53}
# Receipt states: the message_state TLV (SMPP 3.4, 5.2.28) and the `stat:` word of the text.
STATES = {
    2: "delivered",
    3: "expired",
    4: "failed",  # deleted
    5: "failed",  # undeliverable
    8: "failed",  # rejected
}
STATS = {"DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "REJECTD": 8}
ERRORS = {3: "validity_period_expired", 4: "deleted", 5: "undeliverable", 8: "rejected"}

UDHI = 0x40
RECEIPT = 0x04  # esm_class bits 2-5: SMSC delivery receipt


def encode_parts(text: str, encoding: str) -> tuple[list[bytes], int, int]:
    """The message as submit_sm short_messages: (parts, data_coding, esm_class), split where
    `measure` splits it (the segments quoted and billed): a character (a GSM escape pair, a
    UTF-16 surrogate pair) is never cut between two parts."""
    units: list[bytes] | None = None
    coding, single, multi = 0x00, GSM_SINGLE, GSM_MULTI
    if encoding == "GSM-7":
        try:
            units = [c.encode("gsm03.38") for c in text]
        except UnicodeEncodeError:
            units = None
    if units is None:  # UCS-2: sizes in 16-bit units, bytes twice that
        coding, single, multi = 0x08, UCS2_SINGLE, UCS2_MULTI
        units = [c.encode("utf-16-be") for c in text]
        sizes = [len(u) // 2 for u in units]
    else:
        sizes = [len(u) for u in units]
    starts = parts_of(sizes, single, multi)
    if len(starts) == 1:
        return [b"".join(units)], coding, 0
    if len(starts) > 255:
        raise ValueError("a message cannot have more than 255 parts")
    ends = [*starts[1:], len(units)]
    chunks = [b"".join(units[a:b]) for a, b in zip(starts, ends, strict=True)]
    ref = random.randrange(256)  # identifies the parts of one message on the handset
    header = bytes([0x05, 0x00, 0x03, ref, len(chunks)])
    return [header + bytes([i]) + c for i, c in enumerate(chunks, 1)], coding, UDHI


def decode_text(data: bytes, coding: int) -> str:
    if coding == 0x08:
        return data.decode("utf-16-be", errors="replace")
    if coding == 0x00:
        try:
            return data.decode("gsm03.38")
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1")


def parse_deliver(pdu: Any) -> Receipt | Reply | None:
    """A deliver_sm as a delivery receipt or a reply (None: an intermediate receipt)."""
    raw: bytes = pdu.short_message or getattr(pdu, "message_payload", None) or b""
    if (pdu.esm_class or 0) & 0x3C == RECEIPT:
        text = raw.decode("latin-1")
        message_id = pdu.receipted_message_id
        if isinstance(message_id, bytes):
            message_id = message_id.decode("ascii", errors="replace")
        if not message_id:
            m = re.search(r"\bid:(\S+)", text)
            message_id = m.group(1) if m else None
        state = pdu.message_state
        if state is None:
            m = re.search(r"\bstat:(\w+)", text)
            state = STATS.get(m.group(1).upper()) if m else None
        if not message_id or state not in STATES:
            return None  # accepted / enroute / unknown: a final receipt follows
        error = None
        if STATES[state] != "delivered":
            m = re.search(r"\berr:(\w+)", text)
            code = m.group(1) if m and m.group(1).strip("0") else None
            error = ERRORS[state] + (f"_{code}"[:8] if code else "")
        return Receipt(message_id[:64], STATES[state], error)
    source = pdu.source_addr or b""
    number = source.decode("ascii", errors="replace") if isinstance(source, bytes) else source
    if number and pdu.source_addr_ton == 1 and not number.startswith("+"):
        number = "+" + number
    return Reply(decode_text(raw, pdu.data_coding or 0), number=number or None)


def bind_refused(mode: str, exc: smpplib.exceptions.PDUError) -> str:
    """Why the SMSC refused a bind, in words an operator can act on (never the credentials)."""
    status = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
    if status is None:
        return f"the SMSC refused the {mode} bind"
    what = smpplib.consts.DESCRIPTIONS.get(status, "unknown status")
    hint = (
        ": check RENTAL_SMPP_SYSTEM_ID, RENTAL_SMPP_PASSWORD and RENTAL_SMPP_SYSTEM_TYPE"
        if status in BIND_CREDENTIALS
        else ""
    )
    return f"the SMSC refused the {mode} bind: {what} (status {status:#04x}){hint}"


@dataclass
class _Pending:
    ref: int
    part: int


@dataclass
class _Message:
    ref: int
    parts: list[bytes]
    ids: dict[int, str] = field(default_factory=dict)
    error: str | None = None
    uncertain: bool = False


class _Link:
    """One bound SMPP session."""

    def __init__(self, mode: str) -> None:
        s = get_settings()
        if not s.smpp_host:
            raise ConfigurationError("RENTAL_SMPP_HOST is not set (the SMSC to bind to)")
        self.client = smpplib.client.Client(
            s.smpp_host,
            s.smpp_port,
            timeout=s.smpp_timeout_seconds,
            logger_name=WIRE_LOGGER,
            allow_unknown_opt_params=True,
        )
        try:
            self.client.connect()
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            self.close()
            raise CarrierUnavailable(
                f"the SMSC at {s.smpp_host}:{s.smpp_port} cannot be reached (connection refused "
                "or timed out)"
            ) from exc
        try:
            bind = getattr(self.client, f"bind_{mode}")
            bind(
                system_id=s.smpp_system_id,
                password=s.smpp_password,
                system_type=s.smpp_system_type,
            )
        except smpplib.exceptions.PDUError as exc:
            self.close()
            raise CarrierUnavailable(bind_refused(mode, exc)) from exc
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            self.close()
            raise CarrierUnavailable(
                f"the SMSC did not answer the {mode} bind ({type(exc).__name__})"
            ) from exc
        self.used = time.monotonic()
        self.pid = os.getpid()

    def send(self, command: str, **fields: Any) -> int:
        pdu = smpplib.smpp.make_pdu(command, client=self.client, **fields)
        self.client.send_pdu(pdu)
        self.used = time.monotonic()
        return int(pdu.sequence)

    def answer(self, command: str, sequence: int, status: int = OK) -> None:
        pdu = smpplib.smpp.make_pdu(command, client=self.client, status=status)
        pdu.sequence = sequence
        self.client.send_pdu(pdu)

    def read(self) -> Any:
        pdu = self.client.read_pdu()
        self.used = time.monotonic()
        return pdu

    def closed_by_peer(self) -> bool:
        """The SMSC closed the connection while it sat idle (nothing sent on it yet)."""
        sock = self.client._socket  # noqa: SLF001 - smpplib exposes no socket accessor
        if sock is None:
            return True
        if not select.select([sock], [], [], 0)[0]:
            return False
        try:
            return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"")
        except BlockingIOError:
            return False
        except OSError:
            return True

    def alive(self) -> bool:
        """enquire_link, answered: the SMSC is still there."""
        try:
            sequence = self.send("enquire_link")
            while True:
                pdu = self.read()
                if pdu.command == "enquire_link_resp" and pdu.sequence == sequence:
                    return True
                if pdu.command == "enquire_link":
                    self.answer("enquire_link_resp", pdu.sequence)
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError):
            return False

    def close(self) -> None:
        """Unbind (what arrives meanwhile is left unacknowledged: the SMSC keeps it), then
        disconnect."""
        try:
            if self.client.state not in (CLOSED, OPEN):
                sequence = self.send("unbind")
                self.client._socket.settimeout(1.0)  # noqa: SLF001 - a short goodbye
                while True:
                    pdu = self.read()
                    if pdu.command == "unbind_resp" and pdu.sequence == sequence:
                        break
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError):
            pass
        finally:
            self.client.state = OPEN  # unbound, or given up on: smpplib need not warn
            if self.client._socket is not None:  # noqa: SLF001 - smpplib has no public test
                self.client.disconnect()


_transmitter: _Link | None = None  # one per process; a forked child opens its own


class SmppCarrier:
    name = "smpp"

    def __init__(self) -> None:
        s = get_settings()
        if not s.smpp_host:
            raise ConfigurationError("RENTAL_SMPP_HOST is not set (the SMSC to bind to)")
        refuse_synthetic_base_off_loopback(s.smpp_host)
        self.window = s.smpp_window
        self.throttle_wait = s.smpp_throttle_wait_seconds
        self.enquire_after = s.smpp_enquire_link_seconds

    # -- submitting ------------------------------------------------------------------------

    def _link(self) -> _Link:
        global _transmitter
        link = _transmitter
        if link is not None and link.pid == os.getpid():
            if not link.closed_by_peer() and (
                time.monotonic() - link.used < self.enquire_after or link.alive()
            ):
                return link
            link.close()
        _transmitter = None
        _transmitter = _Link("transmitter")
        return _transmitter

    @staticmethod
    def hang_up() -> None:
        """Unbind and close this process's transmitter, if any."""
        global _transmitter
        if _transmitter is not None:
            _transmitter.close()
        _transmitter = None

    def submit(self, messages: list[Outgoing]) -> tuple[list[Submitted], Feedback]:
        batch: dict[int, _Message] = {}
        queue: deque[_Pending] = deque()
        fields: dict[int, dict[str, Any]] = {}
        for m in messages:
            parts, coding, esm_class = encode_parts(m.text, m.encoding)
            batch[m.ref] = _Message(m.ref, parts)
            fields[m.ref] = {
                "source_addr_ton": 5 if not m.sender.isdigit() else 1,  # alphanumeric sender
                "source_addr_npi": 0 if not m.sender.isdigit() else 1,
                "source_addr": m.sender,
                "dest_addr_ton": 1,  # international
                "dest_addr_npi": 1,  # E.164
                "destination_addr": m.number.lstrip("+"),
                "esm_class": esm_class,
                "data_coding": coding,
                "registered_delivery": 1,  # a receipt for the final outcome
            }
            queue.extend(_Pending(m.ref, i) for i in range(len(parts)))
        inflight: dict[int, _Pending] = {}
        backoff, waited = 0.05, 0.0
        reconnected = False
        try:
            link = self._link()
        except CarrierUnavailable:
            raise  # nothing was handed over: the whole batch waits
        while queue or inflight:
            throttled = False
            sending: _Pending | None = None
            try:
                while queue and len(inflight) < self.window:
                    sending = queue.popleft()
                    message = batch[sending.ref]
                    if message.uncertain or message.error is not None:
                        sending = None
                        continue  # a part was refused or lost: the rest is not sent
                    sequence = link.send(
                        "submit_sm",
                        short_message=message.parts[sending.part],
                        **fields[sending.ref],
                    )
                    inflight[sequence] = sending
                    sending = None
                while inflight:
                    pdu = link.read()
                    command = pdu.command
                    if command == "enquire_link":
                        link.answer("enquire_link_resp", pdu.sequence)
                        continue
                    if command == "deliver_sm":  # not for a transmitter: deliver it again
                        link.answer("deliver_sm_resp", pdu.sequence, RX_T_APPN)
                        continue
                    if command == "unbind":
                        link.answer("unbind_resp", pdu.sequence)
                        raise smpplib.exceptions.ConnectionError("the SMSC unbound")
                    if command not in ("submit_sm_resp", "generic_nack"):
                        continue
                    p_or_none = inflight.pop(pdu.sequence, None)
                    if p_or_none is None:
                        continue
                    p = p_or_none
                    status = int(pdu.status or 0)
                    message = batch[p.ref]
                    if status == OK and command == "submit_sm_resp":
                        raw = pdu.message_id or b""
                        message.ids[p.part] = (
                            raw.decode("ascii", errors="replace") if isinstance(raw, bytes) else raw
                        )
                    elif status in THROTTLED:
                        queue.appendleft(p)
                        throttled = True
                    else:
                        message.error = PERMANENT.get(status, f"smpp_status_{status:#x}")
                    if queue and not throttled and len(inflight) < self.window:
                        break  # room in the window: send more before reading on
            except (
                TimeoutError,
                smpplib.exceptions.ConnectionError,
                smpplib.exceptions.PDUError,  # a garbled answer: the stream cannot be trusted
                OSError,
            ) as exc:
                # Whatever was unanswered may have reached the SMSC: never sent again.
                for p in [*inflight.values(), *([sending] if sending else [])]:
                    batch[p.ref].uncertain = True
                inflight.clear()
                self.hang_up()
                reason = f"SMPP connection lost ({type(exc).__name__})"
                if reconnected or not queue:
                    return self._settle(batch, reason)
                reconnected = True
                try:
                    link = self._link()
                except CarrierUnavailable:
                    return self._settle(batch, reason)
                continue
            if throttled and not inflight:
                if waited >= self.throttle_wait:
                    return self._settle(batch, "the SMSC keeps throttling")
                time.sleep(backoff)
                waited += backoff
                backoff = min(backoff * 2, 2.0)
        return self._settle(batch, None)

    def _settle(
        self, batch: dict[int, _Message], reason: str | None
    ) -> tuple[list[Submitted], Feedback]:
        """The outcome per message; raises CarrierUnavailable (with what did go through) when
        part of the batch was not handed over and must wait."""
        done: list[Submitted] = []
        for message in batch.values():
            ids = [message.ids[i] for i in sorted(message.ids)]
            if message.uncertain and not ids or 0 < len(ids) < len(message.parts):
                # Lost in flight, or cut short (a part refused, lost or still throttled when
                # the batch gave up): the handset may hold part of it. Never resent, not billed.
                done.append(Submitted(message.ref, None, uncertain=True))
            elif ids:  # every part went out
                done.append(Submitted(message.ref, ids[0], parts=len(ids), part_ids=tuple(ids)))
            elif message.error is not None:
                done.append(Submitted(message.ref, None, error=message.error))
        if reason is None or len(done) == len(batch):
            return done, Feedback()  # every message has its outcome (uncertain: unknown)
        raise CarrierUnavailable(
            reason,
            accepted=[s for s in done if not s.uncertain],
            uncertain=[s.ref for s in done if s.uncertain],
        )

    # -- receiving -------------------------------------------------------------------------

    def receive(
        self,
        record: Callable[[list[Receipt], list[Reply]], None],
        idle_seconds: float = 0.5,
        limit_seconds: float = 10.0,
        chunk: int = 500,
    ) -> int:
        """Bind as a receiver and take what the SMSC holds (receipts, replies) until it has
        been quiet for `idle_seconds` or `limit_seconds` have passed. What has arrived is
        recorded (`record` commits) as soon as nothing more is waiting on the socket, or every
        `chunk` PDUs, and only then acknowledged: an SMSC's window of unacknowledged
        deliver_sm keeps moving. Returns how many PDUs were taken."""
        link = _Link("receiver")
        sock = link.client._socket  # noqa: SLF001 - smpplib exposes no socket accessor
        sock.settimeout(idle_seconds)
        deadline = time.monotonic() + limit_seconds
        receipts: list[Receipt] = []
        replies: list[Reply] = []
        unacked: list[int] = []
        taken = 0

        def flush() -> None:
            nonlocal taken
            if not unacked:
                return
            record(receipts, replies)  # committed: now the SMSC may forget them
            for sequence in unacked:
                link.answer("deliver_sm_resp", sequence)
            taken += len(unacked)
            receipts.clear()
            replies.clear()
            unacked.clear()

        try:
            while time.monotonic() < deadline:
                if unacked and (len(unacked) >= chunk or not select.select([sock], [], [], 0)[0]):
                    flush()
                try:
                    pdu = link.read()
                except TimeoutError:
                    break
                if pdu.command == "enquire_link":
                    link.answer("enquire_link_resp", pdu.sequence)
                elif pdu.command == "unbind":
                    link.answer("unbind_resp", pdu.sequence)
                    break
                elif pdu.command == "deliver_sm":
                    unacked.append(pdu.sequence)
                    item = parse_deliver(pdu)
                    if isinstance(item, Receipt):
                        receipts.append(item)
                    elif isinstance(item, Reply):
                        replies.append(item)
            flush()
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            log.warning("SMPP receiver connection lost (%s)", type(exc).__name__)
        finally:
            link.close()
        return taken
