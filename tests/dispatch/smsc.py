"""A small SMSC on 127.0.0.1 for the SMPP carrier's tests: the edge of the world, where a
real operator would be. An asyncio server on its own thread; PDUs are decoded and encoded
with smpp34's codec (its server's deliver_sm never resolves the ESME's answer in 1.5.0, so the
sessions are ours).

It answers binds, enquire_link, submit_sm (after a short delay, so that a windowing client has
several outstanding), and delivers receipts and mobile-originated replies over any bound
receiver, keeping each one until it is acknowledged: a session that ends first gives it back
to the queue. Faults on demand: throttling, refused destinations, a connection dropped with
submits unanswered, binds refused for a wrong password.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
import smpp34

BIND = {0x00000001: "receiver", 0x00000002: "transmitter", 0x00000009: "transceiver"}
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x04, 0x05, 0x06, 0x15
RESP = 0x80000000
GENERIC_NACK = 0x80000000
THROTTLED, INVALID_DESTINATION, INVALID_PASSWORD = 0x58, 0x0B, 0x0E
TLV_RECEIPTED_MESSAGE_ID, TLV_MESSAGE_STATE = 0x001E, 0x0427  # SMPP 3.4, 5.3.2
STATE = {"DELIVRD": 2, "EXPIRED": 3, "UNDELIV": 5}


@dataclass
class Submission:
    session: int
    destination: str
    source: str
    source_ton: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    short_message: bytes
    message_id: str | None  # None: refused


@dataclass
class Pending:
    kind: str  # receipt or mo
    pdu: smpp34.DeliverSm
    message_id: str | None = None


@dataclass(eq=False)
class _Session:
    number: int
    writer: asyncio.StreamWriter
    mode: str = ""
    outstanding: int = 0
    unacked: dict[int, Pending] = field(default_factory=dict)
    enquire_answered: bool = False


def _header(command: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    return struct.pack(">IIII", 16 + len(body), command, status, sequence) + body


class TestSmsc:
    __test__ = False  # not a test class

    def __init__(self, response_delay: float = 0.005, system_id: str = "TESTSMSC") -> None:
        self.response_delay = response_delay
        self.system_id = system_id
        self.submissions: list[Submission] = []
        self.binds: list[str] = []
        self.max_outstanding = 0
        self.throttle = 0  # answer the next n submit_sm with ESME_RTHROTTLED
        self.refuse: set[str] = set()  # destinations answered ESME_RINVDSTADR (permanent)
        self.drop_at: int | None = None  # the nth submit_sm closes the connection, unanswered
        self.password: str | None = None  # set: a bind with another one is refused
        self.refused_binds = 0
        self.outcome: Callable[[str], str] = lambda destination: "DELIVRD"
        self.receipts_on = True
        self.queue: deque[Pending] = deque()
        self.acknowledged: list[Pending] = []
        self.enquire_links = 0  # received from clients
        self.enquire_answers = 0  # our enquire_link answered by a receiver
        self._ids = itertools.count(1)
        self._sessions = itertools.count(1)
        self._seq = itertools.count(1)
        self.loop = asyncio.new_event_loop()
        self._live: set[_Session] = set()
        self._wake: asyncio.Event | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> TestSmsc:
        ready = threading.Event()

        async def main() -> None:
            self._wake = asyncio.Event()
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self._server = server
            ready.set()
            await server.serve_forever()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(main())
            except asyncio.CancelledError:
                pass
            finally:
                left = asyncio.all_tasks(self.loop)
                for task in left:
                    task.cancel()
                self.loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
                self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        def stop() -> None:
            self._server.close()
            for s in list(self._live):
                s.writer.close()
            for task in asyncio.all_tasks(self.loop):
                task.cancel()

        self.loop.call_soon_threadsafe(stop)
        self.thread.join(5)

    def _poke(self) -> None:
        if self._wake is not None:
            self.loop.call_soon_threadsafe(self._wake.set)

    # -- what the tests read ---------------------------------------------------------------

    def accepted(self) -> list[Submission]:
        return [s for s in self.submissions if s.message_id is not None]

    def messages(self) -> list[tuple[str, str, int, int]]:
        """Accepted submissions reassembled per handset message: (destination, text, parts,
        data_coding), in the order their first part arrived."""
        whole: dict[tuple[str, int], dict[int, Submission]] = {}
        order: list[tuple[str, int]] = []
        out: list[tuple[str, str, int, int]] = []
        for s in self.accepted():
            if s.esm_class & 0x40:
                udh = s.short_message[: s.short_message[0] + 1]
                ref, total, seq = udh[3], udh[4], udh[5]
                key = (s.destination, ref)
                if key not in whole:
                    whole[key] = {}
                    order.append(key)
                whole[key][seq] = s
                if len(whole[key]) == total:
                    parts = [whole[key][i] for i in range(1, total + 1)]
                    body = b"".join(p.short_message[p.short_message[0] + 1 :] for p in parts)
                    out.append((s.destination, _text(body, s.data_coding), total, s.data_coding))
            else:
                out.append((s.destination, _text(s.short_message, s.data_coding), 1, s.data_coding))
        return out

    def mo(self, number: str, text: str) -> None:
        """A reply from a handset (number in international digits, no '+')."""
        pdu = smpp34.DeliverSm(
            number,
            "36111",
            text.encode("utf-16-be"),
            source_addr_ton=1,
            source_addr_npi=1,
            data_coding=8,
        )
        self.loop.call_soon_threadsafe(self.queue.append, Pending("mo", pdu))
        self._poke()

    def receipt(self, submission: Submission) -> None:
        """Queue the receipt of an accepted submission now (with `receipts_on` off)."""
        assert submission.message_id is not None
        self.loop.call_soon_threadsafe(
            self._receipt, submission.message_id, submission.destination, submission.source
        )

    def hang_up_all(self) -> None:
        """Close every session, as an SMSC restarting would."""

        def close() -> None:
            for s in list(self._live):
                s.writer.close()

        self.loop.call_soon_threadsafe(close)
        self.wait(lambda: not self._live)

    def wait(self, condition: Callable[[], bool], seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("the SMSC never saw what the test waited for")
            time.sleep(0.02)

    # -- protocol --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(next(self._sessions), writer)
        self._live.add(session)
        deliverer: asyncio.Task[None] | None = None
        try:
            while True:
                head = await reader.readexactly(16)
                length, command, status, sequence = struct.unpack(">IIII", head)
                body = await reader.readexactly(length - 16)
                if command in BIND and not self._password_ok(body):
                    self.refused_binds += 1
                    writer.write(_header(command | RESP, INVALID_PASSWORD, sequence, b"\0"))
                elif command in BIND:
                    session.mode = BIND[command]
                    self.binds.append(session.mode)
                    writer.write(
                        _header(command | RESP, 0, sequence, self.system_id.encode() + b"\0")
                    )
                    if session.mode in ("receiver", "transceiver"):
                        deliverer = asyncio.ensure_future(self._deliver(session))
                        query = next(self._seq)
                        session.unacked[query] = Pending("enquire", smpp34.DeliverSm("", ""))
                        writer.write(_header(ENQUIRE_LINK, 0, query))
                elif command == SUBMIT_SM:
                    if not await self._submit(session, head + body, sequence):
                        return  # dropped on purpose
                elif command == ENQUIRE_LINK:
                    self.enquire_links += 1
                    writer.write(_header(ENQUIRE_LINK | RESP, 0, sequence))
                elif command == ENQUIRE_LINK | RESP:
                    if session.unacked.pop(sequence, None) is not None:
                        self.enquire_answers += 1
                elif command == DELIVER_SM | RESP:
                    item = session.unacked.pop(sequence, None)
                    if item is not None and status == 0:
                        self.acknowledged.append(item)
                    elif item is not None:
                        self.queue.appendleft(item)
                elif command == UNBIND:
                    writer.write(_header(UNBIND | RESP, 0, sequence))
                    await writer.drain()
                    return
                else:
                    writer.write(_header(GENERIC_NACK, 0x03, sequence))  # ESME_RINVCMDID
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            if deliverer is not None:
                deliverer.cancel()
            # What was sent but never acknowledged is delivered again, to the next receiver.
            for item in reversed(list(session.unacked.values())):
                if item.kind != "enquire":
                    self.queue.appendleft(item)
            session.unacked.clear()
            self._live.discard(session)
            writer.close()

    def _password_ok(self, body: bytes) -> bool:
        """A bind's body starts with system_id and password, each ended by a NUL."""
        if self.password is None:
            return True
        _, password, _ = body.split(b"\0", 2)
        return password == self.password.encode()

    async def _submit(self, session: _Session, raw: bytes, sequence: int) -> bool:
        pdu = smpp34.decode(raw)
        assert isinstance(pdu, smpp34.SubmitSm)
        if self.drop_at is not None and len(self.submissions) + 1 >= self.drop_at:
            self.drop_at = None
            session.writer.transport.abort()  # gone, this one unanswered
            return False
        destination = pdu.destination_addr
        if self.throttle > 0:
            self.throttle -= 1
            status, message_id = THROTTLED, None
        elif destination in self.refuse:
            status, message_id = INVALID_DESTINATION, None
        else:
            status, message_id = 0, f"smsc-{next(self._ids):08d}"
        self.submissions.append(
            Submission(
                session.number,
                destination,
                pdu.source_addr,
                pdu.source_addr_ton,
                pdu.esm_class,
                pdu.data_coding,
                pdu.registered_delivery,
                pdu.short_message,
                message_id,
            )
        )
        session.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, session.outstanding)

        async def answer() -> None:
            await asyncio.sleep(self.response_delay)
            body = (message_id or "").encode() + b"\0"
            session.writer.write(_header(SUBMIT_SM | RESP, status, sequence, body))
            session.outstanding -= 1
            if message_id is not None and self.receipts_on and pdu.registered_delivery & 1:
                self._receipt(message_id, destination, pdu.source_addr)

        asyncio.ensure_future(answer())
        return True

    def _receipt(self, message_id: str, destination: str, source: str) -> None:
        stat = self.outcome(destination)
        err = "000" if stat == "DELIVRD" else "001"
        text = (
            f"id:{message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
            f"submit date:2611261000 done date:2611261000 stat:{stat} err:{err} text:"
        )
        pdu = smpp34.DeliverSm(
            destination,
            source,
            text.encode(),
            source_addr_ton=1,
            source_addr_npi=1,
            esm_class=0x04,
            tlvs=[
                smpp34.Tlv(TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\0"),
                smpp34.Tlv(TLV_MESSAGE_STATE, bytes([STATE[stat]])),
            ],
        )
        self.queue.append(Pending("receipt", pdu, message_id))
        if self._wake is not None:
            self._wake.set()

    async def _deliver(self, session: _Session) -> None:
        """Push what is queued to this receiver, ten unacknowledged at most."""
        assert self._wake is not None
        while True:
            while self.queue and len(session.unacked) < 10:
                item = self.queue.popleft()
                sequence = next(self._seq)
                session.unacked[sequence] = item
                p = item.pdu
                wire = smpp34.DeliverSm(
                    p.source_addr,
                    p.destination_addr,
                    p.short_message,
                    source_addr_ton=p.source_addr_ton,
                    source_addr_npi=p.source_addr_npi,
                    esm_class=p.esm_class,
                    data_coding=p.data_coding,
                    tlvs=p.tlvs,
                    sequence_number=sequence,
                ).encode()
                session.writer.write(wire)
            await session.writer.drain()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), 0.05)
            except TimeoutError:
                pass


def _text(body: bytes, coding: int) -> str:
    return body.decode("utf-16-be") if coding == 0x08 else body.decode("gsm03.38")
