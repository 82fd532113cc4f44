"""The OpenTelemetry SDK side of kit/tracing.py, imported only when tracing is on: the
provider, the exporter the settings name, and the cleaning of every span before it leaves the
process.

What leaves is cleaned whatever recorded it: a URL's query string is dropped (a carrier's
gateway or a webhook URL may carry a token or a number there), and phone-like text is masked
(kit/redact.py) in span names, attribute values, events (an exception's message and stack)
and status texts. SQL statements are recorded without their parameters and Redis commands as
`COMMAND ? ?` by the instrumentations themselves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, Status
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from kit.redact import redact
from kit.settings import TracingSettings

# Attributes holding a URL or its parts: the query string goes.
URL_KEYS = ("url.full", "http.url", "http.target", "url.original")
QUERY_KEYS = ("url.query", "http.query")


def _value(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if key in URL_KEYS:
            value = value.split("?", 1)[0]
        return redact(value)
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        return tuple(redact(v) if isinstance(v, str) else v for v in value)
    return value


def clean_attributes(attributes: Attributes) -> dict[str, Any]:
    """Attributes fit to leave the process: no query string, no phone-like text."""
    if not attributes:
        return {}
    return {k: _value(k, v) for k, v in attributes.items() if k not in QUERY_KEYS}


def clean(span: ReadableSpan) -> ReadableSpan:
    """A copy of `span` fit to leave the process."""
    status = span.status
    if status.description:  # its first line: PostgreSQL's DETAIL line names the values
        status = Status(status.status_code, redact(status.description.splitlines()[0]))
    return ReadableSpan(
        name=redact(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=clean_attributes(span.attributes),
        events=[
            Event(redact(e.name), clean_attributes(e.attributes), e.timestamp) for e in span.events
        ],
        links=[Link(link.context, clean_attributes(link.attributes)) for link in span.links],
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class Cleaning(SpanExporter):
    """Exports through `inner` what `clean` leaves of each span."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([clean(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class JsonLines(SpanExporter):
    """One JSON object per span, appended to a file (the processes of a worker share it:
    each batch is one write to a file opened for appending)."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(_as_dict(s)) + "\n" for s in spans)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _as_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    return {
        "name": span.name,
        "service": span.resource.attributes.get("service.name"),
        "trace_id": format(ctx.trace_id, "032x") if ctx else None,
        "span_id": format(ctx.span_id, "016x") if ctx else None,
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "kind": span.kind.name,
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
        "links": [format(link.context.trace_id, "032x") for link in span.links],
    }


class NoLoneClients(Sampler):
    """Roots that are client calls (a broker's poll for tasks, a pool's ping) are not traced:
    a trace starts with a request, a task or a scheduled send."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "NoLoneClients"


def _exporter(settings: TracingSettings) -> SpanExporter:
    if settings.mode == "console":
        return ConsoleSpanExporter()
    if settings.mode == "file":
        if settings.file is None:
            from kit.errors import ConfigurationError

            raise ConfigurationError("RENTAL_TRACING=file needs RENTAL_TRACING_FILE (a path)")
        return JsonLines(settings.file)
    endpoint = settings.otlp_endpoint.rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    return OTLPSpanExporter(endpoint=endpoint)


def provider(
    service: str, settings: TracingSettings, exporter: SpanExporter | None = None
) -> TracerProvider:
    """The process's provider: named `service`, exporting cleaned spans to `exporter`, else to
    what the settings name (OTLP in batches; the console and a file at once)."""
    made = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(root=NoLoneClients()),
    )
    chosen = exporter or _exporter(settings)
    if exporter is None and settings.mode == "otlp":
        made.add_span_processor(BatchSpanProcessor(Cleaning(chosen)))
    else:
        made.add_span_processor(SimpleSpanProcessor(Cleaning(chosen)))
    return made
