"""Last line of defence: anything that looks like a phone number is masked before it is logged
or echoed in an error message (a customer could type one into a criterion)."""

from __future__ import annotations

import logging
import re

PHONE_LIKE = re.compile(r"\+?\d(?:[\s.\-]?\d){7,}")


def redact(text: str) -> str:
    return PHONE_LIKE.sub("<redacted>", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install(*names: str) -> None:
    """Mask phone-like digit runs (numbers, prospect ids) in every record of every handler of
    the root logger, the servers' loggers and `names`."""
    flt = RedactingFilter()
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "celery", *names):
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(flt)
