"""Celery entry point of the reports: sent orders whose receipt window has closed become
`reported` (their report is final). Run by the beat every minute; safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task

from kit import clock
from kit.db import unit_of_work
from reports import service

log = logging.getLogger(__name__)


@shared_task(name="reports.finalise")
def finalise() -> None:
    with unit_of_work() as session:
        done = service.finalise_due(session, clock.now())
    for order_id in done:
        log.info("order %s: report final", order_id)
