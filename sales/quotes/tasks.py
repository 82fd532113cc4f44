"""Celery entry point of the quotes: the audit of attack-like quotes (sales/quotes/audit.py).

The beat sends `quotes.audit` every few seconds and the task finds, in the database, the quotes
answered since: a quote costs its request nothing (no message to a broker that may be down, or
that an API run without workers has not configured), and none is lost if a worker dies. Safe to
run twice: a quote is marked audited, with its flags, by one compare-and-set."""

from __future__ import annotations

import logging

from celery import shared_task

from sales.quotes import flows

log = logging.getLogger(__name__)
# A run stops taking new quotes after this long, under the beat's period: runs rarely overlap.
RUN_SECONDS = 10.0


@shared_task(name="quotes.audit")
def audit() -> int:
    """Audit the quotes not audited yet; the number of pairs flagged."""
    flagged = flows.audit_pending(RUN_SECONDS)
    if flagged:
        log.info("quote audit: %d pair(s) of quotes differ by a small group", flagged)
    return flagged
