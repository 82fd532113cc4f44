"""The receiver bind: delivery receipts and replies (deliver_sm), each acknowledged only after
it was recorded, so that a crash leaves it with the SMSC, which delivers it again."""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable
from typing import Any

import smpplib.exceptions

from dispatch.carriers.base import Receipt, Reply
from dispatch.carriers.smpp.codec import parse_deliver
from dispatch.carriers.smpp.link import Link
from kit.settings import SmppSettings

log = logging.getLogger(__name__)

Record = Callable[[list[Receipt], list[Reply]], None]


class _Inbox:
    """What arrived and is not acknowledged yet."""

    def __init__(self, link: Link, record: Record) -> None:
        self.link = link
        self.record = record
        self.receipts: list[Receipt] = []
        self.replies: list[Reply] = []
        self.unacked: list[int] = []
        self.taken = 0

    def add(self, pdu: Any) -> None:
        self.unacked.append(pdu.sequence)
        item = parse_deliver(pdu)
        if isinstance(item, Receipt):
            self.receipts.append(item)
        elif isinstance(item, Reply):
            self.replies.append(item)

    def flush(self) -> None:
        if not self.unacked:
            return
        self.record(self.receipts, self.replies)  # committed: now the SMSC may forget them
        for sequence in self.unacked:
            self.link.answer("deliver_sm_resp", sequence)
        self.taken += len(self.unacked)
        self.receipts.clear()
        self.replies.clear()
        self.unacked.clear()


def take(
    settings: SmppSettings,
    record: Record,
    idle_seconds: float,
    limit_seconds: float,
    chunk: int,
) -> int:
    """Bind as a receiver and take what the SMSC holds until it has been quiet for
    `idle_seconds` or `limit_seconds` have passed; see SmppCarrier.receive."""
    link = Link("receiver", settings)
    sock = link.socket
    sock.settimeout(idle_seconds)
    deadline = time.monotonic() + limit_seconds
    inbox = _Inbox(link, record)
    try:
        while time.monotonic() < deadline:
            waiting = inbox.unacked
            if waiting and (len(waiting) >= chunk or not select.select([sock], [], [], 0)[0]):
                inbox.flush()
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
                inbox.add(pdu)
        inbox.flush()
    except (smpplib.exceptions.ConnectionError, OSError) as exc:
        log.warning("SMPP receiver connection lost (%s)", type(exc).__name__)
    finally:
        link.close()
    return inbox.taken
