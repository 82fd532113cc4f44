from __future__ import annotations

from kit.errors import Conflict, InvalidInput


class ReportNotAvailable(Conflict):
    """The order has not started sending: there is nothing to report yet."""

    code = "report_not_available"


class UnknownFormat(InvalidInput):
    code = "unknown_format"
