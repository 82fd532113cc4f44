from __future__ import annotations

from kit.errors import ConfigurationError, Conflict, InvalidInput


class ReportNotAvailable(Conflict):
    """The order has not started sending: there is nothing to report yet."""

    code = "report_not_available"


class UnknownFormat(InvalidInput):
    code = "unknown_format"


class PdfUnavailable(ConfigurationError):
    """WeasyPrint cannot load the system libraries it lays pages out with."""

    code = "pdf_unavailable"
