"""`GET /metrics` for Prometheus, and the worker's exporter (docs/operations.md).

What the API adds at scrape time, read when Prometheus asks (cheap: one grouped count on an
indexed column, a few Redis LLENs): orders by status, the depth of the Celery queues, the
carrier's send cap. A part that cannot be read (Redis down) is left out of that scrape, and
`rental_redis_up` says so; a scrape never fails for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kit import metrics, redisd
from kit.db import unit_of_work
from kit.settings import get_settings
from sales.orders.repository import OrderRepository

log = logging.getLogger(__name__)

QUEUES = ("celery",)  # Celery's default queue: every task of the service goes there
# kombu's Redis transport keeps a queue's higher priorities in lists named queue + SEP + step.
PRIORITY_SEP, PRIORITY_STEPS = "\x06\x16", (3, 6, 9)


class ServiceCollector(Collector):
    """Gauges read at scrape time from the database and Redis."""

    def collect(self) -> Iterator[Metric]:
        yield from self._orders()
        yield from self._queues()
        cap = GaugeMetricFamily(
            "rental_carrier_rate_cap_per_second",
            "The configured carrier's send cap, messages per second, shared by all workers "
            "(0: no cap).",
            labels=["carrier"],
        )
        carriers = get_settings().carriers
        cap.add_metric([carriers.name], carriers.rate_per_second)
        yield cap

    def _orders(self) -> Iterator[Metric]:
        try:
            with unit_of_work() as session:
                counts = OrderRepository(session).count_by_status()
        except Exception:  # noqa: BLE001 - the scrape goes on without them
            log.warning("metrics: orders by status not read", exc_info=True)
            return
        family = GaugeMetricFamily("rental_orders", "Orders by status.", labels=["status"])
        for status, n in sorted(counts.items()):
            family.add_metric([status], n)
        yield family

    def _queues(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("rental_redis_up", "1 when the broker (Redis) answers.")
        depth = GaugeMetricFamily(
            "rental_queue_depth", "Tasks waiting in a Celery queue.", labels=["queue"]
        )
        client = redisd.probe(start=False)  # a scrape never starts the private server
        try:
            if client is None:
                raise ConnectionError("the private Redis server is not running")
            pipe = client.pipeline(transaction=False)
            for queue in QUEUES:
                pipe.llen(queue)
                for step in PRIORITY_STEPS:
                    pipe.llen(f"{queue}{PRIORITY_SEP}{step}")
            lengths = [int(n) for n in pipe.execute()]
        except Exception:  # noqa: BLE001 - redis-py's errors, or none running
            up.add_metric([], 0)
            yield up
            return
        finally:
            if client is not None:
                client.close()
        width = 1 + len(PRIORITY_STEPS)
        for i, queue in enumerate(QUEUES):
            depth.add_metric([queue], sum(lengths[i * width : (i + 1) * width]))
        up.add_metric([], 1)
        yield up
        yield depth


router = APIRouter()
_api_registry = metrics.registry(ServiceCollector())


@router.get("/metrics", include_in_schema=False)
def scrape() -> Response:
    """The API's metrics in Prometheus' text format. Unauthenticated, like most exporters: it
    holds no organisation's data; keep it on a private network (docs/operations.md)."""
    body, content_type = metrics.exposition(_api_registry)
    return Response(body, media_type=content_type)


def serve_worker_metrics() -> None:
    """The worker's exporter, in its main process: every pool process's counters added up
    (multiprocess mode), on RENTAL_WORKER_METRICS_PORT. A port in use is said, not fatal."""
    ops = get_settings().operations
    if not ops.worker_metrics_port:
        return
    try:
        start_http_server(
            ops.worker_metrics_port, ops.worker_metrics_host, registry=metrics.registry()
        )
    except OSError as exc:
        log.warning(
            "worker metrics not served on %s:%s (%s): set RENTAL_WORKER_METRICS_PORT to a free "
            "port, or 0",
            ops.worker_metrics_host,
            ops.worker_metrics_port,
            exc.strerror,
        )
        return
    log.info(
        "worker metrics on http://%s:%s/metrics", ops.worker_metrics_host, ops.worker_metrics_port
    )
