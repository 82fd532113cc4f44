"""What comes back from carriers: delivery receipts and replies, and visits of STOP links.

Receipts update the ledger; duplicates and unknown message ids are harmless. A receipt that
arrives before its submit was recorded is kept and applied when it is. A STOP reply or a STOP
link visit puts the number's HMAC on the global suppression list at once: every later quote
and every batch not yet handed to the carrier leaves that person out, across refreshes and
customers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import phonenumbers
from sqlalchemy.orm import Session

from datasets.vault import hmac_number, normalise_e164
from dispatch.carriers.base import Receipt, Reply
from dispatch.models import EarlyReceipt, MessagePart
from dispatch.repository import (
    TALLY_BIN_MS,
    LedgerRepository,
    Move,
    PartsRepository,
    TallyRepository,
    Target,
)
from dispatch.states import FINAL, RecipientStatus
from kit import keys, metrics
from kit.settings import get_settings
from segmentation.repository import SuppressionRepository

R = RecipientStatus
NATIONAL = ("FR", "RE", "GP", "MQ", "GF", "YT")  # national formats a reply may come in
STOP_WORDS = {
    "stop",
    "stop sms",
    "stopsms",
    "arret",
    "arreter",
    "arret sms",
    "unsubscribe",
    "desabonnement",
    "desabonner",
    "desinscription",
    "end",
    "quit",
}


def is_stop(text: str) -> bool:
    """STOP, Stop SMS, ARRÊT, arrêter, unsubscribe...: any case, accents and punctuation."""
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if not unicodedata.combining(c)).lower()
    words = re.sub(r"[^a-z]+", " ", plain).split()
    if not words:
        return False
    return " ".join(words) in STOP_WORDS or words[0] in {"stop", "arret", "unsubscribe"}


def apply_receipts(session: Session, receipts: Sequence[Receipt], now: datetime) -> int:
    """Apply delivery receipts; returns how many changed a recipient."""
    final = [r for r in receipts if r.status in FINAL]
    if not final:
        return 0
    ledger = LedgerRepository(session)
    targets = ledger.receipt_targets([r.message_id for r in final])
    parts = _parts_of(session, final, targets)
    whole = [x for x in final if x.message_id not in parts]
    tallies = TallyRepository(session)
    now_ms = tallies.instant_ms(now)
    updates: list[tuple[int, str, str | None]] = []
    moved: dict[tuple[str, int], list[tuple[Target, Receipt]]] = {}
    early = []
    lags: dict[float, int] = {}  # seconds -> receipts: a chunk's share its submission instant
    finalised: set[int] = set()
    for receipt in whole:
        target = targets.get(receipt.message_id)
        if target is None:
            early.append(receipt)
            continue
        if target.status != R.submitted or target.id in finalised:
            continue  # a duplicate, or already final: nothing changes
        finalised.add(target.id)  # the first one wins
        updates.append((target.id, receipt.status, receipt.error))
        moved.setdefault(target.batch, []).append((target, receipt))
        if target.submitted_ms is not None:
            lag = (now_ms - target.submitted_ms) / 1000
            lags[lag] = lags.get(lag, 0) + 1
    touched: set[tuple[str, int]] = set()  # batches folded again (parts of messages)
    updates.extend(_apply_part_receipts(session, parts, final, touched))
    if ledger.finalise(updates, now) != len(updates):  # another transaction came first
        touched.update(moved)
    tallies.lock([*moved, *touched])
    for batch, receipts_of in sorted(moved.items()):
        if batch not in touched:
            moves = _moves(receipts_of, now_ms)
            if moves is None or not tallies.shift(*batch, moves):
                touched.add(batch)
    tallies.refresh(touched)  # for the report
    metrics.messages([status for _, status, _ in updates], lags)
    for receipt in early:
        session.add(
            EarlyReceipt(
                message_id=receipt.message_id,
                status=receipt.status,
                error=receipt.error,
                received_at=now,
            )
        )
    session.flush()
    return len(updates)


def _parts_of(
    session: Session, receipts: Sequence[Receipt], targets: Mapping[str, Target]
) -> dict[str, MessagePart]:
    """message id -> the part of a concatenated message it names, looked up only for the
    receipts that may name one: an id no recipient holds (a part's, or an early receipt), or
    the id of a recipient sent in several parts. Most receipts are for whole messages and
    their transaction skips the lookup."""
    maybe = [
        r.message_id for r in receipts if (t := targets.get(r.message_id)) is None or t.parts > 1
    ]
    return {p.message_id: p for p in PartsRepository(session).by_message_ids(maybe)}


def _moves(applied: Sequence[tuple[Target, Receipt]], now_ms: int) -> list[Move] | None:
    """The tallies' moves of a batch's recipients from `submitted` to their receipts'
    statuses, grouped by the five-minute bin of their submission (None: one of them is not
    in a cell the moves can take from, the batch is folded again)."""
    groups: dict[tuple[bool, str, str | None, int], tuple[int, int, int, int]] = {}
    for target, receipt in applied:
        sub = target.submitted_ms
        if target.error is not None or sub is None:
            return None
        key = (target.control, str(receipt.status), receipt.error, sub // TALLY_BIN_MS)
        n, parts, lo, hi = groups.get(key, (0, 0, sub, sub))
        groups[key] = (n + 1, parts + target.parts, min(lo, sub), max(hi, sub))
    return [
        Move(c, status, error, n, parts, lo, hi, now_ms, R.submitted.value)
        for (c, status, error, _), (n, parts, lo, hi) in groups.items()
    ]


def _apply_part_receipts(
    session: Session,
    parts: dict[str, MessagePart],
    receipts: Sequence[Receipt],
    touched: set[tuple[str, int]],
) -> list[tuple[int, str, str | None]]:
    """Receipts of the parts of concatenated messages: the recipient is delivered once every
    part is, failed (or expired) as soon as one part is. Adds the (order, batch) of each
    recipient updated to `touched`."""
    if not parts:
        return []
    repo = PartsRepository(session)
    recipients = sorted(
        {parts[r.message_id].recipient_id for r in receipts if r.message_id in parts}
    )
    # The recipients locked before their parts are marked and read again: two transactions
    # each taking one part's receipt (the receiver's and the early receipts' sweep) would
    # otherwise each see the other part still submitted, and the recipient stay submitted.
    rows = {r.id: r for r in LedgerRepository(session).by_ids(recipients, lock=True)}
    changed = [
        {"id": parts[r.message_id].id, "status": r.status, "error": r.error}
        for r in receipts
        if r.message_id in parts and parts[r.message_id].status == R.submitted
    ]
    repo.mark(changed)
    siblings: dict[int, list[MessagePart]] = {}
    for p in repo.of_recipients(recipients):
        siblings.setdefault(p.recipient_id, []).append(p)
    updates: list[tuple[int, str, str | None]] = []
    for rid, group in siblings.items():
        row = rows.get(rid)
        if row is None or row.status != R.submitted:
            continue
        bad = next((p for p in group if p.status in (R.failed, R.expired)), None)
        if bad is not None:
            updates.append((rid, bad.status, bad.error))
        elif all(p.status == R.delivered for p in group) and len(group) >= row.parts:
            updates.append((rid, R.delivered, None))
        else:
            continue
        touched.add((row.order_id, row.batch))
    return updates


def apply_early(session: Session, message_ids: Sequence[str], now: datetime) -> None:
    """Receipts kept because they arrived before these message ids were recorded."""
    ledger = LedgerRepository(session)
    if not message_ids or not ledger.any_early_receipt():
        return  # the common case: no 1,000-id lookup inside the chunk's write transaction
    found = ledger.early_receipts_for(message_ids)
    if not found:
        return
    apply_receipts(session, [Receipt(e.message_id, e.status, e.error) for e in found], now)
    ledger.drop_early_receipts([e.id for e in found])


def sweep_early(session: Session, now: datetime, limit: int = 1000) -> int:
    """Kept receipts whose message id has been recorded since: applied. This closes a race:
    a receipt kept as early by one transaction while the transaction recording its submission
    ran at the same time, neither seeing the other's rows (READ COMMITTED on PostgreSQL).
    Receipts kept longer than the receipt window name nothing that will ever be recorded (a
    part of a message cut short): dropped. Returns how many were applied."""
    ledger = LedgerRepository(session)
    waiting = ledger.early_receipts(limit)
    if not waiting:
        return 0
    known = ledger.recorded_message_ids([e.message_id for e in waiting])
    ready = [e for e in waiting if e.message_id in known]
    if ready:
        apply_receipts(session, [Receipt(e.message_id, e.status, e.error) for e in ready], now)
        ledger.drop_early_receipts([e.id for e in ready])
    ledger.drop_early_receipts_before(
        now - timedelta(hours=get_settings().dispatch.receipt_window_hours)
    )
    return len(ready)


def _hmac_of(number: str) -> bytes | None:
    """The HMAC of a reply's sender: a national or E.164 number, or international digits
    without the '+' (as carriers often give them, e.g. from an overseas department)."""
    if number.startswith("+"):
        candidates = [(number, "FR")]
    else:  # national: metropolitan or an overseas department's; else digits missing their '+'
        candidates = [(number, region) for region in NATIONAL] + [("+" + number, "FR")]
    for candidate, region in candidates:
        try:
            return hmac_number(keys.hmac_key(), normalise_e164(candidate, region))
        except (ValueError, phonenumbers.NumberParseException):
            continue
    return None  # not a number: nothing to do


def apply_replies(session: Session, replies: Sequence[Reply], source: str, now: datetime) -> int:
    """Opt-outs from STOP replies; returns how many numbers were newly suppressed. Reply texts
    are never stored."""
    suppressions = SuppressionRepository(session)
    ledger = LedgerRepository(session)
    added = 0
    for reply in replies:
        if not is_stop(reply.text):
            continue
        mac: bytes | None = None
        if reply.message_id:
            rows = ledger.by_message_ids([reply.message_id])
            mac = rows[0].phone_hmac if rows else None
        if mac is None and reply.number:
            mac = _hmac_of(reply.number)
        if mac is not None and suppressions.add(mac, "stop_reply", source, now):
            added += 1
    return added


def stop_link(session: Session, token: str, now: datetime) -> bool:
    """A visit of a personal STOP link; False when the token names no one."""
    row = LedgerRepository(session).by_stop_token(token)
    if row is None:
        return False
    SuppressionRepository(session).add(row.phone_hmac, "stop_link", f"order {row.order_id}", now)
    return True
