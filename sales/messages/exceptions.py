from __future__ import annotations

from kit.errors import InvalidInput


class InvalidSender(InvalidInput):
    code = "invalid_sender"


class InvalidMessage(InvalidInput):
    code = "invalid_message"
