"""The worker's side of a code request: look the number up in the base, and send a code only
when it is there. Off the request path, so the asker learns nothing from the answer or its
timing; one short transaction per challenge, so a carrier failure leaves it pending (retried
at the next tick) and two workers never both send it (compare-and-set pending -> sent). A
worker killed between the hand-over and the commit leaves it pending: the next tick sends a
new code (the first one no longer works); a second SMS is the lesser harm here."""

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


def _send_one(carrier: Carrier, challenge_id: int, now: datetime) -> str:
    """Settle one pending challenge; returns its new status."""
    settings = get_settings()
    with unit_of_work() as session:
        challenges = repository.ChallengeRepository(session)
        found = session.get(Challenge, challenge_id)
        if found is None or found.status != ChallengeStatus.pending:
            return "taken"
        if found.expires_at <= now:
            challenges.settle(challenge_id, ChallengeStatus.absent, None)
            return ChallengeStatus.absent
        row = repository.prospect_of(snapshot.current(settings.base_dir), found.phone_hmac)
        if row is None:
            challenges.settle(challenge_id, ChallengeStatus.absent, None)
            return ChallengeStatus.absent
        code = f"{secrets.randbelow(10**6):06d}"
        if not challenges.settle(
            challenge_id, ChallengeStatus.sent, service.code_hash(found.token_hash, code)
        ):
            return "taken"
        number = decrypt_number(keys.vault_key(), row["phone_enc"], int(row["prospect_id"]))
        text = code_text(code, settings.rights.code_ttl_minutes)
        # Handed over inside the transaction: if the carrier refuses, the challenge stays
        # pending and the next tick tries again.
        carrier.submit(
            [Outgoing(-challenge_id, number, settings.rights.code_sender, text, "GSM-7", "code")]
        )
        return ChallengeStatus.sent


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
