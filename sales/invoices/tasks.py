"""Celery entry point of invoices: the beat announces invoices that became overdue (webhooks'
`invoice.overdue`, once per invoice). Safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task

from kit import clock
from kit.db import unit_of_work
from sales.invoices import service

log = logging.getLogger(__name__)


@shared_task(name="invoices.overdue")
def overdue() -> None:
    with unit_of_work() as session:
        announced = service.announce_overdue(session, clock.now())
    if announced:
        log.info("invoices: %d overdue announced", announced)
