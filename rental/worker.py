"""The Celery application (Redis broker) and its task list. `rental worker` and `rental beat`
run it; the tasks themselves are declared with `shared_task` in the domains (dispatch, reports).

The schedule lives in the database, not on the broker: the beat only sends `dispatch.tick`
every few seconds, and the tick finds what is due. No task waits on the broker with a long
ETA (Redis redelivers a task whose ETA exceeds the visibility timeout). Tasks acknowledge late
and are safe to run twice.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_init

from kit import redact, redisd
from kit.settings import get_settings

app = Celery(
    "rental",
    include=[
        "dispatch.tasks",
        "reports.tasks",
        "sales.quotes.tasks",
        "sales.invoices.tasks",
        "webhooks.tasks",
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
            "webhooks": {"task": "webhooks.deliver", "schedule": s.webhooks.sweep_seconds},
            "overdue": {"task": "invoices.overdue", "schedule": 300.0},
        },
        beat_schedule_filename=str(s.home.resolve() / "celerybeat-schedule"),
    )
    return app


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_logs(logger: Any = None, **_: Any) -> None:
    """The worker's and scheduler's log lines are masked like the API's."""
    redact.install()
    if logger is not None:
        for handler in logger.handlers:
            redact.protect(handler)


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    """A forked pool process must not share the parent's database connections: drop the
    inherited pool (without closing the parent's sockets) so that it opens its own."""
    from kit.db import get_engine

    get_engine().dispose(close=False)
