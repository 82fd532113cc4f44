"""Traces (OpenTelemetry), for the API, the workers and the scheduler (docs/operations.md).

Off by default (RENTAL_TRACING=off): then neither the SDK nor an instrumentation is imported,
and every call here returns at once. (FastAPI loads the OpenTelemetry API package itself; its
calls do nothing without a provider.) On, a process sets itself up once, given its role: the
API in `create_app`, each worker process at `worker_process_init` (the SDK's threads do not
survive a fork), the scheduler when it starts. SQLAlchemy, Redis, httpx and Celery are
instrumented in every role, FastAPI in the API; what leaves the process is cleaned first
(kit/tracing_export.py: no bound parameter, no query string, no phone-like text).

Celery carries the trace context in each task's headers. The API enqueues nothing for an
order, though: the scheduler finds it due later. So the request that places an order keeps
its context in Redis (`remember`), and the worker's tasks about that order continue the
request's trace (`continue_trace`). A quote is audited by a periodic sweep over many: the
request keeps its context the same way and the audit of that quote is a span of its trace
(`following`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from kit import redisd
from kit.settings import get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)

Role = Literal["api", "worker", "beat"]
SERVICES: dict[Role, str] = {"api": "rental-api", "worker": "rental-worker", "beat": "rental-beat"}
# How long the context of the request that placed an order is kept for its tasks.
REMEMBER_SECONDS = 7 * 24 * 3600
# Requests not traced: scrapes and probes, every few seconds.
NOT_TRACED = "/metrics,/v1/health"

_provider: list[TracerProvider] = []  # this process's, once set up


def on() -> bool:
    """Whether this process traces."""
    return bool(_provider)


def setup(role: Role, exporter: SpanExporter | None = None) -> bool:
    """Trace this process as `role` when RENTAL_TRACING says so (or to `exporter`, which
    tests pass). Once per process; whether it traces."""
    if _provider:
        return True
    settings = get_settings().traces
    if settings.mode == "off" and exporter is None:
        return False
    from opentelemetry import trace

    from kit import tracing_export

    provider = tracing_export.provider(SERVICES[role], settings, exporter)
    trace.set_tracer_provider(provider)
    _provider.append(provider)
    _instrument(provider)
    log.info("tracing on (%s) as %s", settings.mode if exporter is None else "given", role)
    return True


def _instrument(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    from kit import db

    CeleryInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    # Statements only, never their parameters; no SQL comment added to the queries. Its
    # declared range stops before SQLAlchemy 2.1, whose engine events it uses are unchanged
    # (tests/ops/test_tracing.py checks the spans).
    SQLAlchemyInstrumentor().instrument(
        tracer_provider=provider, enable_commenter=False, skip_dep_check=True
    )
    # The engine made so far was made untraced: the next one is made through the instrumented
    # create_engine (a forked worker process has already let go of its parent's connections).
    db.dispose_engine()


def instrument_app(app: FastAPI) -> None:
    """The API's server spans (one per request, named by its route), when tracing."""
    if not _provider:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider[0],
        excluded_urls=NOT_TRACED,
        exclude_spans=["receive", "send"],  # one span per ASGI message: noise
    )


def shutdown() -> None:
    """Send what is still buffered (a worker process stops without running atexit)."""
    if _provider:
        _provider[0].shutdown()


def _key(kind: str, key: str) -> str:
    return f"rental:trace:{kind}:{key}"


def remember(kind: str, key: str) -> None:
    """Keep the current trace context for `key` (an order's id) so that the worker's tasks
    about it continue this trace. Never fails the request."""
    if not _provider:
        return
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    if "traceparent" not in carrier:
        return
    try:
        redisd.client().set(_key(kind, key), json.dumps(carrier), ex=REMEMBER_SECONDS)
    except Exception as exc:  # noqa: BLE001 - a trace is never worth a failed order
        log.warning("trace context not kept (%s)", type(exc).__name__)


def continue_trace(kind: str, key: str, request: Any) -> None:
    """Make a Celery task about `key` continue the trace `remember` kept: its context goes on
    the task's request, where the Celery instrumentation reads its parent (a task's headers
    otherwise name the tick that enqueued it)."""
    if not _provider:
        return
    for field, value in _kept(kind, key).items():
        if field in ("traceparent", "tracestate"):
            setattr(request, field, value)


def _kept(kind: str, key: str) -> dict[str, str]:
    try:
        raw = redisd.client().get(_key(kind, key))
    except Exception as exc:  # noqa: BLE001 - the work goes on untraced
        log.warning("trace context not read (%s)", type(exc).__name__)
        return {}
    return json.loads(raw) if raw else {}


@contextmanager
def following(kind: str, key: str, name: str) -> Iterator[None]:
    """A span `name` in the trace of the request that `remember`ed `key` (work a sweep does for
    it later, outside any task about it); nothing when this process does not trace."""
    if not _provider:
        yield
        return
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    parent = extract(_kept(kind, key))
    with trace.get_tracer(__name__).start_as_current_span(name, context=parent):
        yield
