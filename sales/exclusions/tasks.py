"""Celery entry point of exclusion files: hashed files matched with the base by the worker,
which alone holds the vault key. The beat sends `exclusions.match` every few seconds and the
task finds the files waiting in the database (none is lost if a worker dies); safe to run
twice, a file is marked matched by its revision."""

from __future__ import annotations

import logging

from celery import shared_task

from sales.exclusions import flows

log = logging.getLogger(__name__)


@shared_task(name="exclusions.match")
def match_pending() -> int:
    """Match the hashed exclusion files waiting; how many were matched."""
    matched = flows.match_pending()
    if matched:
        log.info("exclusion files: %d hashed file(s) matched with the base", matched)
    return matched
