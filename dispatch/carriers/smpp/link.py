"""One bound SMPP session (connect, bind, enquire_link, unbind), and the transmitter bind a
worker process keeps open across batches."""

from __future__ import annotations

import logging
import os
import select
import socket
import time
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from dispatch.carriers.base import CarrierUnavailable
from dispatch.carriers.smpp.codec import OK
from kit.errors import ConfigurationError
from kit.settings import SmppSettings

# smpplib dumps every PDU in hex at DEBUG, numbers included: never let those records exist.
WIRE_LOGGER = "dispatch.smpp.wire"
logging.getLogger(WIRE_LOGGER).setLevel(logging.WARNING)

CLOSED, OPEN = 0, 1  # smpplib client states before a bind
# Bind refusals that point at the account's settings: ESME_RBINDFAIL, ESME_RINVPASWD,
# ESME_RINVSYSID, ESME_RINVSYSTYP.
BIND_CREDENTIALS = {0x0D, 0x0E, 0x0F, 0x53}
# What ends a session: an answer that never came, a closed or broken connection, a garbled
# answer (the stream cannot be trusted after it).
LOST = (
    TimeoutError,
    smpplib.exceptions.ConnectionError,
    smpplib.exceptions.PDUError,
    OSError,
)


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


class Link:
    """One bound SMPP session, as a transmitter or a receiver."""

    def __init__(self, mode: str, s: SmppSettings) -> None:
        if not s.host:
            raise ConfigurationError("RENTAL_SMPP_HOST is not set (the SMSC to bind to)")
        self.client = smpplib.client.Client(
            s.host,
            s.port,
            timeout=s.timeout_seconds,
            logger_name=WIRE_LOGGER,
            allow_unknown_opt_params=True,
        )
        try:
            self.client.connect()
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            self.close()
            raise CarrierUnavailable(
                f"the SMSC at {s.host}:{s.port} cannot be reached (connection refused or timed out)"
            ) from exc
        self._bind(mode, s)
        self.used = time.monotonic()
        self.pid = os.getpid()

    def _bind(self, mode: str, s: SmppSettings) -> None:
        try:
            bind = getattr(self.client, f"bind_{mode}")
            bind(
                system_id=s.system_id,
                password=s.password,
                system_type=s.system_type,
            )
        except smpplib.exceptions.PDUError as exc:
            self.close()
            raise CarrierUnavailable(bind_refused(mode, exc)) from exc
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            self.close()
            raise CarrierUnavailable(
                f"the SMSC did not answer the {mode} bind ({type(exc).__name__})"
            ) from exc

    @property
    def socket(self) -> Any:
        return self.client._socket  # noqa: SLF001 - smpplib exposes no socket accessor

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
        sock = self.socket
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
                self.socket.settimeout(1.0)  # a short goodbye
                while True:
                    pdu = self.read()
                    if pdu.command == "unbind_resp" and pdu.sequence == sequence:
                        break
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError):
            pass
        finally:
            self.client.state = OPEN  # unbound, or given up on: smpplib need not warn
            if self.socket is not None:
                self.client.disconnect()


class Transmitter:
    """The transmitter bind of one process, kept open across batches: reused while the SMSC
    has not closed it and it was used lately (or answers enquire_link), bound again
    otherwise. A forked child opens its own."""

    def __init__(self) -> None:
        self._link: Link | None = None

    def bound(self, settings: SmppSettings) -> Link:
        link = self._link
        if link is not None and link.pid == os.getpid():
            idle = time.monotonic() - link.used
            if not link.closed_by_peer() and (idle < settings.enquire_link_seconds or link.alive()):
                return link
            link.close()
        self._link = None
        self._link = Link("transmitter", settings)
        return self._link

    def hang_up(self) -> None:
        """Unbind and close the bind, if any."""
        if self._link is not None:
            self._link.close()
        self._link = None
