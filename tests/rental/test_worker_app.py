"""The Celery app of the workers, as a process of the service points it at its Redis."""

from __future__ import annotations

import pytest
from kombu.exceptions import OperationalError

from kit import redisd
from rental.worker import app, configure


def test_a_publish_before_configure_does_not_keep_its_broker() -> None:
    """A task published while the app still pointed elsewhere (here a closed port) fails, and
    does not leave its connection behind: once configured, the next one reaches this home's
    Redis (it used to keep failing with the first broker's URL)."""
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    app.conf.broker_connection_retry_on_startup = False
    app._pool = None  # as in a process where nothing was published yet
    app.amqp._producer_pool = None
    with pytest.raises(OperationalError):
        app.send_task("dispatch.tick", retry=False)
    configure()
    r = redisd.client()
    before = r.llen("celery")
    app.send_task("dispatch.tick", retry=False)
    assert r.llen("celery") == before + 1
    r.delete("celery")  # nobody consumes this test's queue
