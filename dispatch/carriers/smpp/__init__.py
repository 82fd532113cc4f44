"""SMPP 3.4 carrier (smpplib for the PDUs, our own read loop for windowing), in parts:

- `codec`: what goes on the wire (parts with a concatenation header in GSM-7 or UCS-2, the
  submit_sm fields, command statuses) and what comes back (receipts, replies);
- `link`: one bound session (connect, bind, enquire_link, unbind) and the transmitter bind a
  worker process keeps open across batches, checked with enquire_link when it has been idle;
- `window`: up to RENTAL_SMPP_WINDOW submit_sm outstanding at once, throttling and a lost
  connection handled (the parts in flight are uncertain: never resent, reported unknown);
- `receiver`: receipts and replies taken on a receiver bind by the periodic `dispatch.receive`
  task, each acknowledged only after it was recorded.
"""

from __future__ import annotations

from typing import ClassVar

from dispatch.carriers.base import Feedback, Outgoing, Submitted
from dispatch.carriers.guard import refuse_synthetic_base_off_loopback
from dispatch.carriers.smpp import receiver, window
from dispatch.carriers.smpp.codec import encode_parts
from dispatch.carriers.smpp.link import Transmitter
from kit.errors import ConfigurationError
from kit.settings import SmppSettings

__all__ = ["SmppCarrier", "encode_parts"]


class SmppCarrier:
    name = "smpp"
    # One transmitter bind per worker process, shared by the carriers built in it (a send task
    # builds one per batch): the bind outlives a batch, not the process.
    transmitter: ClassVar[Transmitter] = Transmitter()

    def __init__(self, settings: SmppSettings) -> None:
        if not settings.host:
            raise ConfigurationError("RENTAL_SMPP_HOST is not set (the SMSC to bind to)")
        refuse_synthetic_base_off_loopback(settings.host)
        self.settings = settings

    @classmethod
    def hang_up(cls) -> None:
        """Unbind and close this process's transmitter, if any."""
        cls.transmitter.hang_up()

    def submit(self, messages: list[Outgoing]) -> tuple[list[Submitted], Feedback]:
        return window.send(messages, self.transmitter, self.settings)

    def receive(
        self,
        record: receiver.Record,
        idle_seconds: float = 0.5,
        limit_seconds: float = 10.0,
        chunk: int = 500,
    ) -> int:
        """Bind as a receiver and take what the SMSC holds (receipts, replies) until it has
        been quiet for `idle_seconds` or `limit_seconds` have passed. What has arrived is
        recorded (`record` commits) as soon as nothing more is waiting on the socket, or every
        `chunk` PDUs, and only then acknowledged: an SMSC's window of unacknowledged
        deliver_sm keeps moving. Returns how many PDUs were taken."""
        return receiver.take(self.settings, record, idle_seconds, limit_seconds, chunk)
