"""The worker's side of a code request: look the number up in the base, and send a code only
when it is there. Off the request path, so the asker learns nothing from the answer or its
timing; short transactions per challenge, so a carrier failure puts it back pending (retried
at the next tick) and two workers never both send it (compare-and-set pending -> sent).
At most one SMS per challenge: the challenge is marked sent and committed before its code is
handed over, so a worker killed after the hand-over sends nothing more; killed between the
commit and the hand-over, no code goes and the person asks again (as dispatch's claim)."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from datasets import snapshot
from datasets.vault import decrypt_number
from dispatch import carriers
from dispatch.carriers.base import Carrier, CarrierUnavailable, Outgoing
from kit import keys
from kit.db import unit_of_work
from kit.settings import get_settings
from subjects import repository, service
from subjects.models import Challenge, ChallengeStatus

log = logging.getLogger(__name__)


def code_text(code: str, minutes: int) -> str:
    """The SMS: plain GSM-7, one part."""
    return (
        f"Votre code pour consulter vos données: {code}. Valable {minutes} min. "
        "Ne le communiquez à personne."
    )


def _claim(challenge_id: int, now: datetime) -> tuple[str, Outgoing | None]:
    """Settle one pending challenge and commit: (its new status, the SMS to hand over when
    it is `sent`). Marked before the hand-over, so a worker killed after it never sends a
    second code for the same challenge."""
    settings = get_settings()
    with unit_of_work() as session:
        challenges = repository.ChallengeRepository(session)
        found = session.get(Challenge, challenge_id)
        if found is None or found.status != ChallengeStatus.pending:
            return "taken", None
        if found.expires_at <= now:
            challenges.settle(challenge_id, ChallengeStatus.absent, None)
            return ChallengeStatus.absent, None
        row = repository.prospect_of(snapshot.current(settings.base_dir), found.phone_hmac)
        if row is None:
            challenges.settle(challenge_id, ChallengeStatus.absent, None)
            return ChallengeStatus.absent, None
        code = f"{secrets.randbelow(10**6):06d}"
        if not challenges.settle(
            challenge_id, ChallengeStatus.sent, service.code_hash(found.token_hash, code)
        ):
            return "taken", None
        number = decrypt_number(keys.vault_key(), row["phone_enc"], int(row["prospect_id"]))
        text = code_text(code, settings.rights.code_ttl_minutes)
        sms = Outgoing(-challenge_id, number, settings.rights.code_sender, text, "GSM-7", "code")
        return ChallengeStatus.sent, sms


def _send_one(carrier: Carrier, challenge_id: int, now: datetime) -> str:
    """Settle one pending challenge, committed, then hand its code over; returns its status."""
    status, sms = _claim(challenge_id, now)
    if sms is None:
        return status
    try:
        carrier.submit([sms])
    except CarrierUnavailable as down:
        taken = {s.ref for s in down.accepted} | set(down.uncertain)
        if sms.ref not in taken:  # surely not handed over: the next tick tries again
            with unit_of_work() as session:
                repository.ChallengeRepository(session).release(challenge_id)
        raise
    return status


def send_codes(now: datetime, carrier: Carrier | None = None, limit: int = 100) -> dict[str, int]:
    """Settle the pending code requests; returns how many went each way (for the log line)."""
    settings = get_settings()
    carrier = carrier or carriers.current(settings.carriers, settings.home)
    with unit_of_work() as session:
        ids = repository.ChallengeRepository(session).pending_ids(limit)
    tally: dict[str, int] = {}
    for challenge_id in ids:
        try:
            status = _send_one(carrier, challenge_id, now)
        except CarrierUnavailable:
            log.warning("rights codes: carrier unavailable, %d left for the next tick", len(ids))
            break
        tally[status] = tally.get(status, 0) + 1
    return tally
