"""Celery entry point of webhooks: the beat runs the sweep every few seconds; it sends what is
due (new events, retries whose time has come). Safe to run twice and on several workers."""

from __future__ import annotations

import logging

from celery import shared_task

from kit import clock
from webhooks import flows

log = logging.getLogger(__name__)


@shared_task(name="webhooks.deliver")
def deliver() -> None:
    done = flows.deliver_due(clock.now())
    if done:
        log.info("webhooks: %s", ", ".join(f"{n} {s.value}" for s, n in done.items()))
