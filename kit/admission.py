"""Admission control: a saturated process says so at once (503 + Retry-After) instead of letting
requests queue for a database connection or a thread until they fail a minute later.

Requests are sorted into gates (quotes, reports, everything else). A gate runs at most `limit`
requests at once; the next ones wait in line only while the wait the line predicts (people
ahead / limit x the gate's recent time per request) stays under `max_wait`. Beyond that, or if
a slot does not free up within `max_wait`, the answer is 503 with a Retry-After of the predicted
wait. The gates' limits together stay under the server's thread pool and the database pool, so an
admitted request never queues where nobody can see it.

Each process has its own gates: a process's capacity (its DuckDB engine, its threads) is its
own. A pure ASGI middleware, so that nothing is read from the request before it is admitted.
`BodyLimitMiddleware`, in front of it, refuses a body too large before it is read whole.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException

from kit.errors import ServiceBusy

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SMOOTHING = 0.2  # weight of the last request in the gate's running time per request


@dataclass
class Gate:
    """At most `limit` requests at once; a bounded line behind them."""

    name: str
    limit: int
    max_wait: float  # seconds a request may expect to wait for a slot
    seconds_per_request: float = 0.05  # running estimate, refined by every request served
    running: int = 0
    waiting: int = 0
    _slots: asyncio.Semaphore | None = field(default=None, repr=False)

    def predicted_wait(self) -> float:
        """How long the next request would wait for a slot, from the line ahead of it."""
        if self.running < self.limit:
            return 0.0
        return (self.waiting + 1) / self.limit * self.seconds_per_request

    def _refuse(self, wait: float) -> ServiceBusy:
        seconds = max(1, math.ceil(wait))
        return ServiceBusy(
            f"the service is busy ({self.name}): the request was not started; retry in {seconds} s",
            retry_after_seconds=seconds,
        )

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """A slot for one request, or ServiceBusy at once."""
        if self._slots is None:  # made in the event loop that serves requests
            self._slots = asyncio.Semaphore(self.limit)
        wait = self.predicted_wait()
        if wait > self.max_wait:
            raise self._refuse(wait)
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.max_wait)
        except TimeoutError:
            raise self._refuse(self.predicted_wait() or self.max_wait) from None
        finally:
            self.waiting -= 1
        self.running += 1
        started = time.monotonic()
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()
            spent = time.monotonic() - started
            self.seconds_per_request += SMOOTHING * (spent - self.seconds_per_request)


@dataclass(frozen=True)
class Route:
    """Requests whose method is `method`, whose whole path matches `path` and whose query
    string contains a match of `query` (when given) go through `gate`."""

    method: str
    path: re.Pattern[str]
    gate: Gate
    query: re.Pattern[str] | None = None

    def matches(self, method: str, path: str, query: str) -> bool:
        return (
            method == self.method
            and self.path.fullmatch(path) is not None
            and (self.query is None or self.query.search(query) is not None)
        )


class AdmissionMiddleware:
    """Puts every HTTP request through its gate; `exempt` paths (health checks) go straight."""

    def __init__(
        self,
        app: ASGIApp,
        routes: list[Route],
        default: Gate,
        render: Callable[[ServiceBusy], Any],
        exempt: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.routes = routes
        self.default = default
        self.render = render
        self.exempt = exempt

    def gate_for(self, method: str, path: str, query: str = "") -> Gate:
        for route in self.routes:
            if route.matches(method, path, query):
                return route.gate
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        gate = self.gate_for(scope["method"], scope["path"], query)
        admission = gate.admit()
        try:
            await admission.__aenter__()
        except ServiceBusy as busy:
            await self.render(busy)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            await admission.__aexit__(None, None, None)


class BodyLimitMiddleware:
    """Refuses a request body larger than `max_bytes` before it is read whole: at once when
    its Content-Length says so (`render` answers), otherwise as soon as the bytes received pass
    the limit (a 413 HTTPException raised while the endpoint reads the body, rendered by the
    application's handler). Nothing is buffered here."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        render: Callable[[int], Any],
        uploads: tuple[tuple[str, ...], int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.render = render
        self.uploads = uploads  # (path prefixes, limit): routes that stream a large body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        if self.uploads and scope["path"].startswith(self.uploads[0]):
            limit = self.uploads[1]
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > limit:
            await self.render(limit)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, detail=str(limit))  # the limit the answer quotes
            return message

        await self.app(scope, limited, send)
