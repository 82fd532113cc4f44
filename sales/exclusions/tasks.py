"""Celery entry point of exclusion files: hashed files matched with the base by the worker,
which alone holds the vault key. The beat sends `exclusions.match` every few seconds and the
task finds the files waiting in the database (none is lost if a worker dies); safe to run
twice, a file is marked matched by its revision. One worker matches at a time (a lease in
Redis): a pass over a large base takes about a minute, and the beat's next rounds would
otherwise start the same pass on every other worker meanwhile."""

from __future__ import annotations

import logging
import secrets

from celery import shared_task

from kit import redisd
from sales.exclusions import flows

log = logging.getLogger(__name__)

MATCHING = "rental:exclusions:matching"
# Longer than a pass at 10M (about a minute); a worker killed mid-pass frees it by then.
LEASE_SECONDS = 900
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@shared_task(name="exclusions.match")
def match_pending() -> int:
    """Match the hashed exclusion files waiting, unless another worker is at it; how many
    were matched."""
    r = redisd.client()
    token = secrets.token_hex(8)
    if not r.set(MATCHING, token, nx=True, ex=LEASE_SECONDS):
        return 0  # another worker holds the lease: it matches what is waiting
    try:
        matched = flows.match_pending()
    finally:
        r.eval(_RELEASE, 1, MATCHING, token)
    if matched:
        log.info("exclusion files: %d hashed file(s) matched with the base", matched)
    return matched
