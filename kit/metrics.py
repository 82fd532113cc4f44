"""The service's Prometheus metrics (docs/operations.md) and the few calls that feed them.

Counters and histograms live here; what is read at scrape time (orders by status, queue depth,
the carrier's cap) is collected in rental/metrics.py. No label carries an organisation's data:
routes are templates (`/v1/orders/{order_id}`), never paths.

A worker runs several processes (Celery's pool): there, prometheus-client's multiprocess mode
is on (PROMETHEUS_MULTIPROC_DIR, set by `rental worker` before anything imports the library)
and one exporter adds up the processes' files.
"""

from __future__ import annotations

import bisect
import functools
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import ParamSpec, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.errors import RentalError
from kit.settings import get_settings

P = ParamSpec("P")
R = TypeVar("R")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"  # a path no route answers: never the path itself

REQUESTS = Counter(
    "rental_http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "rental_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUOTES = Counter(
    "rental_quotes",
    "Quotes served, and quotes refused by reason (the error code the caller got).",
    ["outcome", "reason"],
)
MESSAGES = Counter(
    "rental_messages",
    "Messages per carrier: submitted to it, then delivered, failed, expired or unknown.",
    ["carrier", "outcome"],
)
CARRIER_ERRORS = Counter(
    "rental_carrier_errors",
    "Times a carrier could not take messages (down, throttling, refused bind...).",
    ["carrier"],
)
RECEIPT_LAG = Histogram(
    "rental_receipt_lag_seconds",
    "From a message's submission to its final delivery receipt.",
    ["carrier"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600, 72 * 3600),
)


def _carrier() -> str:
    return get_settings().carriers.name


def counts_quotes(fn: Callable[P, R]) -> Callable[P, R]:
    """Counts each call of the quote flow: served, or refused by its error's code."""

    @functools.wraps(fn)
    def counted(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            out = fn(*args, **kwargs)
        except RentalError as exc:
            QUOTES.labels("refused", exc.code).inc()
            raise
        QUOTES.labels("served", "").inc()
        return out

    return counted


def messages(outcomes: Iterable[object], lags: Mapping[float, int] | None = None) -> None:
    """Messages of the configured carrier that reached these outcomes (submitted, delivered,
    failed...), and for final receipts how long after their submission they came (`lags`:
    seconds -> how many receipts came that long after; a chunk's receipts share a few)."""
    carrier = _carrier()
    counted: dict[str, int] = {}
    for outcome in outcomes:
        name = str(getattr(outcome, "value", outcome))
        counted[name] = counted.get(name, 0) + 1
    for name, n in counted.items():
        MESSAGES.labels(carrier, name).inc(n)
    if lags:
        lag = RECEIPT_LAG.labels(carrier)
        for seconds, n in lags.items():
            _observe(lag, max(0.0, seconds), n)


def _observe(child: Histogram, value: float, n: int) -> None:
    """`n` observations of `value` at once. prometheus_client takes one at a time, and a
    thousand calls per transaction of receipts cost 4-7 ms (each writes a memory-mapped file in
    multiprocess mode); its own fields are moved here as `Histogram.observe` moves them (the
    sum, and the first bucket whose bound holds the value), or one call each without them."""
    total = getattr(child, "_sum", None)
    buckets = getattr(child, "_buckets", None)
    bounds = getattr(child, "_upper_bounds", None)
    if total is None or buckets is None or bounds is None:
        for _ in range(n):
            child.observe(value)
        return
    total.inc(value * n)
    buckets[bisect.bisect_left(bounds, value)].inc(n)


def carrier_error(carrier: str) -> None:
    CARRIER_ERRORS.labels(carrier).inc()


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def registry(*extra: Collector) -> CollectorRegistry:
    """What a scrape reads: this process's metrics (all the pool's, in multiprocess mode) and
    the `extra` collectors read at scrape time."""
    if multiprocess():
        reg = CollectorRegistry()
        _multiprocess.MultiProcessCollector(reg)  # type: ignore[no-untyped-call]
    elif extra:
        reg = CollectorRegistry()
        reg.register(_Default())
    else:
        return REGISTRY
    for collector in extra:
        reg.register(collector)
    return reg


class _Default(Collector):
    """The process-wide registry, inside another one (which adds scrape-time collectors)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def exposition(reg: CollectorRegistry) -> tuple[bytes, str]:
    """The text format and its content type."""
    return generate_latest(reg), CONTENT_TYPE_LATEST


def route_template(scope: Scope) -> str:
    """The matched route's template (`/v1/orders/{order_id}`), rebuilt from the path and its
    parameters (an included router's route knows only its own part of the path); `unmatched`
    when no route took the request, so that a label never holds what a caller typed."""
    if scope.get("route") is None:
        return UNMATCHED
    path = str(scope["path"])
    params = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    for value, name in params.items():  # a {name:path} parameter spans several segments
        if "/" in value and path.endswith("/" + value):
            path = path[: -len(value)] + "{" + name + "}"
    return "/".join("{" + params[s] + "}" if s in params else s for s in path.split("/"))


class HttpMetrics:
    """Counts each HTTP request by method, route template and status, and times it (a pure
    ASGI middleware; the route is known once the router has matched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server answers when the app fails before it starts one

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            method, route = scope["method"], route_template(scope)
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(time.perf_counter() - start)
