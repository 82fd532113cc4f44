from __future__ import annotations

from kit.errors import ConfigurationError, Conflict, InvalidInput, NotFound


class OrderNotFound(NotFound):
    code = "order_not_found"


class QuantityOutOfRange(InvalidInput):
    code = "quantity_out_of_range"


class SegmentTooSmall(InvalidInput):
    code = "segment_too_small"


class InvalidSendTime(InvalidInput):
    code = "invalid_send_time"


class InvalidPaymentDate(InvalidInput):
    code = "invalid_payment_date"


class CancellationAlreadyRequested(Conflict):
    code = "cancellation_already_requested"


class OrderLocked(Conflict):
    """The order is in a state where this change is not possible (the message of an order
    already scheduled, say)."""

    code = "order_locked"


class PriceWouldChange(Conflict):
    code = "price_would_change"


class NothingToRevise(InvalidInput):
    code = "nothing_to_revise"


class StaleSnapshot(ConfigurationError):
    """This process's base snapshot is older than one the service already counted or drew on
    (another host has a newer one): it must not draw recipients until it has that one too."""

    code = "stale_snapshot"
