"""Last line of defence: anything that looks like a phone number is masked before it is logged
or echoed in an error message (a customer could type one into a criterion)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

PHONE_LIKE = re.compile(r"\+?\d(?:[\s.\-]?\d){7,}")


def redact(text: str) -> str:
    return PHONE_LIKE.sub("<redacted>", text)


class RedactingFormatter(logging.Formatter):
    """Masks what a handler's own formatter wrote, traceback included. The record is left
    whole, so every formatter works as it always did (uvicorn's access formatter unpacks
    `record.args` as a 5-tuple) and no line is ever lost to the masking."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactingFilter(logging.Filter):
    """Masks a record's text arguments in place, keeping their number and order, for a handler
    whose formatter is not ours to wrap. Numbers passed as integers are left to the formatter:
    `protect` a handler rather than filter it wherever possible."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        return True


def protect(handler: logging.Handler) -> None:
    """Everything `handler` writes from now on is masked (once, however often called)."""
    if not isinstance(handler.formatter, RedactingFormatter):
        handler.setFormatter(RedactingFormatter(handler.formatter))


def install(*names: str) -> None:
    """Mask phone-like digit runs (numbers, prospect ids) in every line written by the handlers
    of the root logger, the servers' loggers and `names`, and by logging's last resort."""
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "celery", *names):
        for handler in logging.getLogger(name).handlers:
            protect(handler)
    if logging.lastResort is not None:
        protect(logging.lastResort)
