"""Log lines for operators: JSON (one object per line) or plain text, with the request id and
the order id of the work in hand, and phone-like text masked by the formatter itself, so that
no handler writes a number whatever the message, its arguments or its traceback hold.

A request's id comes from its `X-Request-ID` header when that is a sane token, otherwise it is
made here; it is sent back in the response's header and travels with the Celery tasks the
request enqueues (rental/worker.py), so that one grep follows the work into the workers.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit import redact

HEADER = "X-Request-ID"
# A caller's id is kept when it is a short token that cannot hide a number.
SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_DIGITS_AS_LETTERS = str.maketrans("0123456789", "ghijklmnop")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
order_id: ContextVar[str | None] = ContextVar("order_id", default=None)
# The request being served: once routed, its path parameters name the order it is about.
_scope: ContextVar[Mapping[str, Any] | None] = ContextVar("request_scope", default=None)


def new_request_id() -> str:
    """128 random bits written with the letters a to p: never taken for a number."""
    return secrets.token_hex(16).translate(_DIGITS_AS_LETTERS)


def accept_request_id(value: str | None) -> str:
    """The caller's id when sane (a short token, nothing phone-like), else a new one."""
    if value and SANE_ID.fullmatch(value) and redact.redact(value) == value:
        return value
    return new_request_id()


def current_order_id() -> str | None:
    """The order the current task or request is about, when known."""
    known = order_id.get()
    if known is None:
        scope = _scope.get()
        params = scope.get("path_params") if scope is not None else None
        known = params.get("order_id") if isinstance(params, Mapping) else None
    return redact.redact(str(known)) if known is not None else None


@contextmanager
def context(request: str | None = None, order: str | None = None) -> Iterator[None]:
    """Log lines written inside carry this request id and order id."""
    tokens = (request_id.set(request), order_id.set(order))
    try:
        yield
    finally:
        request_id.reset(tokens[0])
        order_id.reset(tokens[1])


def _message(record: logging.LogRecord) -> str:
    """The record's text; a message whose arguments do not fit is still written."""
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - a line is never lost to its own arguments
        return f"{record.msg!s} {record.args!r}"


def _now(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(redact.RedactingFormatter):
    """One JSON object per line: time, level, logger, message, request_id and order_id when
    known, exception (the traceback). Every text is masked."""

    def __init__(self) -> None:
        super().__init__(logging.Formatter())

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _now(record),
            "level": record.levelname,
            "logger": record.name,
            "message": redact.redact(_message(record)),
        }
        rid, oid = request_id.get(), current_order_id()
        if rid is not None:
            line["request_id"] = rid
        if oid is not None:
            line["order_id"] = oid
        if record.exc_info:
            line["exception"] = redact.redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = redact.redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact.redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False)


class PlainFormatter(redact.RedactingFormatter):
    """`time level logger [request order] message`, traceback below; the whole masked."""

    def __init__(self) -> None:
        super().__init__(logging.Formatter())

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(x for x in (request_id.get(), current_order_id()) if x)
        text = f"{_now(record)} {record.levelname} {record.name} "
        text += f"[{ids}] " if ids else ""
        text += _message(record)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + record.exc_text
        return redact.redact(text)


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else PlainFormatter()


def setup(kind: str, level: str = "INFO", stream: IO[str] | None = None) -> None:
    """The root logger writes to `stream` (stdout by default) with our formatter; the servers'
    loggers (uvicorn, celery) hand their records to it; any other handler is masked too."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter(kind))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery"):
        logger = logging.getLogger(name)
        for old in logger.handlers[:]:
            logger.removeHandler(old)
        logger.propagate = True
    logging.captureWarnings(True)  # warnings are log lines too (py.warnings), not raw text
    redact.install()


class RequestContext:
    """Gives each HTTP request its id (answered in `X-Request-ID`) and lets its log lines name
    it, and the order its path names (a pure ASGI middleware: the server's access line,
    written as the response starts, carries them too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER.lower().encode())
        rid = accept_request_id(given.decode("latin-1") if given else None)

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (HEADER.lower().encode(), rid.encode()),
                ]
            await send(message)

        tokens = (request_id.set(rid), _scope.set(scope))
        try:
            await self.app(scope, receive, with_id)
        finally:
            request_id.reset(tokens[0])
            _scope.reset(tokens[1])
