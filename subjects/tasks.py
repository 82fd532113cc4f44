"""Celery entry points of the rights requests, run by the beat; safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task

from kit import clock
from kit.db import unit_of_work
from subjects import flows, service

log = logging.getLogger(__name__)


@shared_task(name="rights.send_codes")
def send_codes() -> None:
    """The one-time codes asked since the last tick."""
    tally = flows.send_codes(clock.now())
    if tally:
        log.info("rights codes settled: %d", sum(tally.values()))


@shared_task(name="rights.remind")
def remind() -> None:
    """Staff requests near their one-month deadline: reminded once, audited. The same hourly
    tick deletes the old one-time code rows."""
    with unit_of_work() as session:
        ids = service.remind(session, clock.now())
        forgotten = service.forget_challenges(session, clock.now())
    for request_id in ids:
        log.warning("rights request %d: its legal deadline is near", request_id)
    if forgotten:
        log.info("rights codes older than their retention deleted: %d", forgotten)
