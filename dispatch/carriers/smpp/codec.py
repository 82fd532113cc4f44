"""SMPP 3.4 on the wire: what a submit_sm carries (the message split into parts with a
concatenation header, GSM-7 or UCS-2), what a command status means, and what a deliver_sm
says (a delivery receipt or a reply). No socket here: smpplib builds and reads the PDUs."""

from __future__ import annotations

import random
import re
from typing import Any

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

from dispatch.carriers.base import Outgoing, Receipt, Reply
from dispatch.states import RecipientStatus as R
from sales.messages.service import GSM7, GSM_MULTI, GSM_SINGLE, UCS2_MULTI, UCS2_SINGLE, parts_of

OK = 0x00
RX_T_APPN = 0x64  # ESME_RX_T_APPN: temporary application error, the SMSC delivers again
THROTTLED = {0x58: "ESME_RTHROTTLED", 0x14: "ESME_RMSGQFUL"}
PERMANENT = {
    0x0A: "invalid_source",  # ESME_RINVSRCADR
    0x0B: "invalid_destination",  # ESME_RINVDSTADR
    0x01: "invalid_length",  # ESME_RINVMSGLEN
    0x45: "submit_failed",  # ESME_RSUBMITFAIL
    0x08: "smsc_error",  # ESME_RSYSERR
}
# Receipt states: the message_state TLV (SMPP 3.4, 5.2.28) and the `stat:` word of the text.
STATES = {
    2: R.delivered,
    3: R.expired,
    4: R.failed,  # deleted
    5: R.failed,  # undeliverable
    8: R.failed,  # rejected
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
    if encoding == GSM7:
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


def submit_sm(message: Outgoing) -> tuple[list[bytes], dict[str, Any]]:
    """The short_message of each part, and the submit_sm fields every part shares."""
    parts, coding, esm_class = encode_parts(message.text, message.encoding)
    numeric = message.sender.isdigit()
    return parts, {
        "source_addr_ton": 1 if numeric else 5,  # international, or an alphanumeric sender
        "source_addr_npi": 1 if numeric else 0,
        "source_addr": message.sender,
        "dest_addr_ton": 1,  # international
        "dest_addr_npi": 1,  # E.164
        "destination_addr": message.number.lstrip("+"),
        "esm_class": esm_class,
        "data_coding": coding,
        "registered_delivery": 1,  # a receipt for the final outcome
    }


def submitted_id(pdu: Any) -> str:
    """The SMSC's id in a submit_sm_resp."""
    raw = pdu.message_id or b""
    return raw.decode("ascii", errors="replace") if isinstance(raw, bytes) else str(raw)


def refusal(status: int) -> str:
    """A permanent refusal's reason, as recorded on the recipient."""
    return PERMANENT.get(status, f"smpp_status_{status:#x}")


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
        return _receipt(pdu, raw.decode("latin-1"))
    source = pdu.source_addr or b""
    number = source.decode("ascii", errors="replace") if isinstance(source, bytes) else source
    if number and pdu.source_addr_ton == 1 and not number.startswith("+"):
        number = "+" + number
    return Reply(decode_text(raw, pdu.data_coding or 0), number=number or None)


def _receipt(pdu: Any, text: str) -> Receipt | None:
    """A delivery receipt: its fields (TLVs) first, the words of its text otherwise."""
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
    if STATES[state] != R.delivered:
        m = re.search(r"\berr:(\w+)", text)
        code = m.group(1) if m and m.group(1).strip("0") else None
        error = ERRORS[state] + (f"_{code}"[:8] if code else "")
    return Receipt(message_id[:64], STATES[state], error)
