"""The Celery application (Redis broker) and its task list. `rental worker` and `rental beat`
run it; the tasks themselves are declared with `shared_task` in the domains (dispatch, reports).

The schedule lives in the database, not on the broker: the beat only sends `dispatch.tick`
every few seconds, and the tick finds what is due. No task waits on the broker with a long
ETA (Redis redelivers a task whose ETA exceeds the visibility timeout). Tasks acknowledge late
and are safe to run twice.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)

from kit import logs, redisd, tracing
from kit.settings import get_settings
from kit.text import is_id

app = Celery(
    "rental",
    include=[
        "dispatch.tasks",
        "reports.tasks",
        "sales.quotes.tasks",
        "sales.exclusions.tasks",
        "sales.invoices.tasks",
        "webhooks.tasks",
        "subjects.tasks",
    ],
)


def configure() -> Celery:
    """Point the app at this home's Redis (starting the private server if needed)."""
    s = get_settings()
    url = redisd.url()
    app.conf.update(
        broker_url=url,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 600},
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        timezone="UTC",
        beat_schedule={
            "tick": {"task": "dispatch.tick", "schedule": s.dispatch.tick_seconds},
            "reports": {"task": "reports.finalise", "schedule": 60.0},
            "quotes": {"task": "quotes.audit", "schedule": 15.0},
            "exclusions": {"task": "exclusions.match", "schedule": 10.0},
            "webhooks": {"task": "webhooks.deliver", "schedule": s.webhooks.sweep_seconds},
            "overdue": {"task": "invoices.overdue", "schedule": 300.0},
            "rights": {"task": "rights.send_codes", "schedule": s.dispatch.tick_seconds},
            "rights-remind": {"task": "rights.remind", "schedule": 3600.0},
        },
        beat_schedule_filename=str(s.home.resolve() / "celerybeat-schedule"),
    )
    # Connections opened before (a publish before the app was pointed here, e.g. with the
    # default broker) would keep their URL: drop them, the next publish opens new ones.
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    return app


@setup_logging.connect
def _logging(loglevel: Any = None, **_: Any) -> None:
    """The worker's and the scheduler's log lines are the API's: JSON by default, masked by
    the formatter (Celery then leaves logging to us)."""
    ops = get_settings().operations
    logs.setup("plain" if ops.log_format == "plain" else "json", loglevel or ops.log_level)


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """A task enqueued while serving a request carries its id (a message header)."""
    rid = logs.request_id.get()
    if rid is not None and headers is not None:
        headers.setdefault("request_id", rid)


@task_prerun.connect
def _task_context(task: Any = None, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    """The task's log lines name the request that enqueued it and the order it works on
    (tasks take the order's id first)."""
    order = (kwargs or {}).get("order_id") or (args[0] if args else None)
    logs.request_id.set(getattr(task.request, "request_id", None) if task else None)
    logs.order_id.set(str(order) if isinstance(order, str) and is_id(order) else None)
    if task is not None and isinstance(order, str) and is_id(order):
        # Before the Celery instrumentation's own handler (connected later, at process init).
        tracing.continue_trace("order", order, task.request)


@task_postrun.connect
def _task_context_end(**_: Any) -> None:
    logs.request_id.set(None)
    logs.order_id.set(None)


@worker_ready.connect
def _metrics_exporter(**_: Any) -> None:
    """The worker's /metrics (its pool's processes added up), once the pool is started."""
    from rental.metrics import serve_worker_metrics

    serve_worker_metrics()


@worker_process_shutdown.connect
def _metrics_process_gone(pid: Any = None, **_: Any) -> None:
    """A pool process stops: its live gauges stop counting (multiprocess mode)."""
    from prometheus_client import multiprocess

    from kit import metrics

    if metrics.multiprocess():
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    """A forked pool process must not share the parent's database connections: drop the
    inherited pool (without closing the parent's sockets) so that it opens its own."""
    from kit.db import get_engine

    get_engine().dispose(close=False)


@worker_process_init.connect
def _tracing(**_: Any) -> None:
    """Each pool process traces on its own (the SDK's threads do not survive the fork)."""
    tracing.setup("worker")


@worker_process_shutdown.connect
def _tracing_end(**_: Any) -> None:
    tracing.shutdown()
