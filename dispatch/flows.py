"""The one-shot send, step by step: start (claim, re-validate, plan) -> pump (enqueue the
batches whose window is open) -> send a batch (claim, submit, record) -> finish (sent, balance).

Each step is one transaction, run by a task (dispatch/tasks.py), and safe to run twice: the
order is claimed with a compare-and-set, batches and recipients too.
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from datasets.geography import PARIS, is_overseas
from datasets.vault import encrypt_numbers, hmac_numbers
from dispatch import intake, windows
from dispatch.carriers.base import CarrierUnavailable, Submitted
from dispatch.models import Batch
from dispatch.repository import (
    UNAVAILABLE,
    CarrierStatusRepository,
    Claimed,
    DispatchOrderRepository,
    HmacIndexRepository,
    LedgerRepository,
    Move,
    PartsRepository,
    TallyRepository,
)
from dispatch.states import HANDED_OVER, BatchStatus, RecipientStatus
from kit import keys, metrics
from kit.redact import redact
from kit.settings import get_settings
from sales.messages.service import STOP_TOKEN_LENGTH
from sales.orders import flows as order_flows
from sales.orders import payments as orders
from sales.orders.models import Order
from sales.orders.repository import OrderRepository
from sales.orders.states import OrderAction, OrderStatus
from sales.quotes.repository import QuoteRepository
from segmentation.repository import (
    ContactHistoryRepository,
    ReservationRepository,
    SuppressionRepository,
)
from segmentation.runtime import Segmenter

log = logging.getLogger(__name__)
S = OrderStatus
R, B = RecipientStatus, BatchStatus
# The statuses a recorded chunk moves its recipients to, as the tallies hold them.
SUBMITTED, FAILED, UNKNOWN = R.submitted.value, R.failed.value, R.unknown.value
ALPHABET = string.ascii_letters + string.digits
BACKOFF_MAX_SECONDS = 60
# The order events that say its carrier is in trouble, and that it is over.
CARRIER_UNAVAILABLE, CARRIER_RECOVERED = (
    OrderAction.carrier_unavailable,
    OrderAction.carrier_recovered,
)
CARRIER_EVENTS = (CARRIER_UNAVAILABLE, CARRIER_RECOVERED)
# How stale the carrier status's "last success" may be (it is written at most this often).
SUCCESS_EVERY = timedelta(seconds=10)


def due(session: Session, now: datetime) -> list[str]:
    return DispatchOrderRepository(session).due(now)


def dispatching(session: Session) -> list[str]:
    return DispatchOrderRepository(session).dispatching()


def start(session: Session, order_id: str, seg: Segmenter, now: datetime) -> bool:
    """Claim a due order (scheduled -> dispatching), re-validate its reservation against the
    base as it is now, top it up to the ordered quantity (never above), and write the ledger.
    Below 90% of the quantity nothing is planned: the order goes on hold. False when the order
    was not ours to start (already claimed, cancelled...)."""
    order = OrderRepository(session).lock(order_id, None)
    if order is None or order.status is not S.scheduled:
        return False
    order_flows.move(session, order, S.dispatching, now, None, "system", "dispatch_started")
    quote = QuoteRepository(session).get(order.quote_id, None)
    assert quote is not None  # noqa: S101  (foreign key)
    drawn = order_flows.draw(session, order, quote, seg, now, None, "system")
    if drawn is None:
        return True  # on hold: the segment fell below 90% of the quantity
    plan(session, order, seg, drawn)
    return True


def plan(session: Session, order: Order, seg: Segmenter, drawn: np.ndarray) -> None:
    """The ledger: one row per recipient, in batches of one calendar each (a batch is sent in
    one window), ordered by calendar then prospect id; control numbers ride in the metropolitan
    calendar. Built column by column: a million recipients are never a million dicts."""
    table, codes, keys = _in_calendar_order(seg, drawn)
    numbers, batches = _batches(order.id, codes, keys, get_settings().dispatch.batch_size)
    columns: dict[str, list[Any]] = {
        name: table.column(name).to_pylist()
        for name in ("prospect_id", "department", "sex", "phone_enc", "phone_hmac")
    }
    columns["calendar"] = [keys[c] for c in codes.tolist()]
    columns["batch"] = numbers.tolist()
    columns["stop_token"] = _stop_tokens(columns["department"])
    ledger = LedgerRepository(session)
    ledger.add_batches(batches)
    ledger.add_recipients(order.id, columns)
    HmacIndexRepository(session).write(order.id, columns["prospect_id"], columns["phone_hmac"])
    tallied = {k: columns[k] for k in ("prospect_id", "batch", "calendar")}
    # For the report: from the snapshot drawn from, ages on the day sending started.
    TallyRepository(session).plan(order.id, tallied, seg.engine.snapshot, order.updated_at)


def _in_calendar_order(seg: Segmenter, drawn: np.ndarray) -> tuple[pa.Table, np.ndarray, list[str]]:
    """The recipients' rows (control numbers among them) ordered by calendar then prospect
    id, each row's calendar code, and the calendars' keys (a code indexes them). DuckDB sorts
    them as it reads them: a million rows are never permuted here."""
    calendars = {d: windows.calendar_of(d).key for d in seg.engine.vocabulary["department"]}
    calendars[PARIS] = windows.calendar_of(PARIS).key
    keys = sorted(set(calendars.values()))
    code_of = {d: keys.index(k) for d, k in calendars.items()}
    contacts = seg.engine.contacts_of(drawn, code_of)
    people = pa.table(
        {
            "prospect_id": contacts.column("prospect_id").cast(pa.int64()),
            "department": contacts.column("department").cast(pa.string()),
            "sex": pc.fill_null(contacts.column("sex").cast(pa.string()), ""),
            "phone_enc": contacts.column("phone_enc").cast(pa.binary()),
            "phone_hmac": contacts.column("phone_hmac").cast(pa.binary()),
        }
    )
    codes = np.asarray(contacts.column("rank").to_numpy(), dtype=np.int64)
    # The control numbers (negative ids) open the metropolitan calendar's rows.
    controls, metro = _controls(), code_of[PARIS]
    at = int(np.searchsorted(codes, metro, side="left"))
    table = pa.concat_tables([people.slice(0, at), controls, people.slice(at)])
    codes = np.concatenate((codes[:at], np.full(controls.num_rows, metro), codes[at:]))
    return table, codes, keys


def _batches(
    order_id: str, codes: np.ndarray, keys: list[str], size: int
) -> tuple[np.ndarray, list[dict[str, object]]]:
    """Each row's batch number (rows sorted by calendar code) and the batches: at most `size`
    rows each, never two calendars in one."""
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]).tolist() if len(codes) else []
    numbers = np.empty(len(codes), dtype=np.int64)
    batches: list[dict[str, object]] = []
    ends = [*starts[1:], len(codes)]
    for start, end in zip(starts, ends, strict=True):
        first = len(batches)
        numbers[start:end] = first + np.arange(end - start) // size
        for n in range(0, end - start, size):
            batches.append(
                {
                    "order_id": order_id,
                    "number": len(batches),
                    "calendar": keys[int(codes[start])],
                    "size": min(size, end - start - n),
                    "status": B.pending,
                }
            )
    return numbers, batches


def _stop_tokens(departments: list[str]) -> list[str | None]:
    """A fresh random STOP token for each overseas recipient, None for the others."""
    overseas = {d: is_overseas(d) for d in set(departments)}
    wanted = sum(1 for d in departments if overseas[d])
    letters = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
    need, chars = wanted * STOP_TOKEN_LENGTH, np.empty(0, dtype=np.uint8)
    while len(chars) < need:  # bytes below 248 (4 x 62) only: no letter more likely
        raw = np.frombuffer(secrets.token_bytes(need - len(chars) + 64), dtype=np.uint8)
        chars = np.concatenate([chars, raw[raw < 4 * len(ALPHABET)]])
    blob = letters[chars[:need] % len(ALPHABET)].tobytes().decode()
    tokens = (blob[i : i + STOP_TOKEN_LENGTH] for i in range(0, need, STOP_TOKEN_LENGTH))
    return [next(tokens) if overseas[d] else None for d in departments]


def _controls() -> pa.Table:
    """Rows for the control numbers of the settings (metropolitan calendar, no civility)."""
    numbers = get_settings().dispatch.control_numbers
    ids = np.arange(-1, -len(numbers) - 1, -1, dtype=np.int64)
    encrypted = encrypt_numbers(keys.vault_key(), [n.encode() for n in numbers], ids)
    macs = hmac_numbers(keys.hmac_key(), [n.encode() for n in numbers])
    return pa.table(
        {
            "prospect_id": pa.array(ids, type=pa.int64()),
            "department": pa.array([PARIS] * len(numbers), type=pa.string()),
            "sex": pa.array([""] * len(numbers), type=pa.string()),
            "phone_enc": pa.array([bytes(e) for e in encrypted], type=pa.binary()),
            "phone_hmac": pa.array([bytes(m) for m in macs], type=pa.binary()),
        }
    )


def pump(session: Session, order_id: str, now: datetime) -> list[int]:
    """The batches of a dispatching order to enqueue now: those whose recipients' window is
    open. Batches interrupted by a crash are recovered (their in-flight recipients become
    unknown, never resent). When nothing is left to send, the order is finished."""
    order = OrderRepository(session).lock(order_id, None)
    if order is None or order.status is not S.dispatching:
        return []
    ledger = LedgerRepository(session)
    settings = get_settings()
    stale = now - timedelta(seconds=settings.dispatch.stale_seconds)
    lost = now - timedelta(seconds=settings.dispatch.reenqueue_seconds)
    open_now: dict[str, bool] = {}  # per calendar: a thousand batches share a few calendars
    ready, unfinished = [], 0
    for b in ledger.unfinished_batches(order_id):
        status = b.status
        if status == B.running and b.heartbeat_at and b.heartbeat_at < stale:
            perhaps_sent = ledger.abandon_submitting(order_id, b.number)
            TallyRepository(session).refresh([(order_id, b.number)])  # for the report
            # Perhaps contacted: the pressure cap counts them, as it counts uncertain results.
            ContactHistoryRepository(session).record((h, order_id, now) for h in perhaps_sent)
            status = B.pending if ledger.pending_in_batch(order_id, b.number) else B.done
            ledger.set_batch(order_id, b.number, status)
        if status == B.done:
            continue
        unfinished += 1
        stale_enqueue = status == B.enqueued and b.enqueued_at is not None and b.enqueued_at < lost
        backing_off = b.not_before is not None and b.not_before > now
        if (status == B.pending or stale_enqueue) and not backing_off:
            if b.calendar not in open_now:
                open_now[b.calendar] = windows.is_open(windows.calendar_from_key(b.calendar), now)
            if open_now[b.calendar]:
                ready.append(b.number)
    ledger.enqueue(order_id, ready, now)
    if unfinished == 0:
        finish(session, order, now)
    return ready


def finish(session: Session, order: Order, now: datetime) -> None:
    """Every recipient was handed to the carrier (or could not be): the order is sent, its
    reservation gives way to the contact history, and the balance is invoiced for the volume
    actually sent."""
    counts = LedgerRepository(session).counts(order.id)
    sent = sum(counts.get(s, 0) for s in HANDED_OVER)
    order_flows.move(session, order, S.sent, now, None, "system", "sent")
    ReservationRepository(session).release(order.id, now)
    orders.invoice_balance(session, order, sent, now)


class Ahead(NamedTuple):
    """What claiming a batch's next chunk reads, before anything is written."""

    order: Order | None
    batch: Batch | None
    window_open: bool
    rows: list[Claimed]
    suppressed: set[bytes]
    opt_outs: int  # the suppression list's stamp, read before `suppressed`


def claim(
    session: Session, order_id: str, number: int, runner: str, limit: int, now: datetime
) -> tuple[Order, list[Claimed]] | None:
    """The next recipients of a running batch, now `submitting`, checked against the window
    and the opt-outs right before they are handed to the carrier. None when the window is
    closed (the batch waits for the next opening), the run lost its batch, or nothing is left.

    The chunk is claimed by raising the batch's watermark to its last recipient, in the
    heartbeat's UPDATE of the batch row: one row written per chunk, not one per recipient (the
    run holds the batch, so nobody else claims below or above it meanwhile). Reads first
    (`look_ahead`), writes last (`take`): on SQLite a transaction holds the database's one
    write lock from its first write to its commit, and the workers take turns on it."""
    return take(
        session, order_id, number, runner, now, look_ahead(session, order_id, number, limit, now)
    )


def look_ahead(session: Session, order_id: str, number: int, limit: int, now: datetime) -> Ahead:
    """The reads of claiming a batch's next chunk: the order, the batch, its window, the next
    pending recipients above the watermark and which of them opted out. Nothing else the run
    writes changes them (the rows above the watermark are the run's alone), so the transaction
    that records a chunk reads the next one before its first write."""
    order = OrderRepository(session).get(order_id, None)
    ledger = LedgerRepository(session)
    batch = ledger.batch(order_id, number)
    if order is None or batch is None or order.status is not S.dispatching:
        return Ahead(order, batch, False, [], set(), 0)
    window_open = windows.is_open(windows.calendar_from_key(batch.calendar), now)
    rows = ledger.next_pending(order_id, number, limit) if window_open else []
    # Opt-outs are final: someone who opted out since the plan is not sent to.
    suppressions = SuppressionRepository(session)
    stamp = suppressions.stamp()
    return Ahead(order, batch, window_open, rows, suppressions.among(_macs(rows)), stamp)


def _macs(rows: Sequence[Claimed]) -> list[bytes]:
    return [r.phone_hmac for r in rows]


def take(
    session: Session, order_id: str, number: int, runner: str, now: datetime, ahead: Ahead
) -> tuple[Order, list[Claimed]] | None:
    """The writes of claiming the chunk `look_ahead` read (see `claim`). The window is
    checked again at `now`, and the opt-outs again if any was added since they were read
    (one indexed read, after the first write: on SQLite no one can add one until the commit),
    so that waiting for the write lock never lets a closed window or a new opt-out through."""
    order, batch, rows = ahead.order, ahead.batch, ahead.rows
    if order is None or batch is None or order.status is not S.dispatching:
        return None
    ledger = LedgerRepository(session)
    calendar = windows.calendar_from_key(batch.calendar)
    window_open = ahead.window_open and windows.is_open(calendar, now)
    top = rows[-1].id if rows and window_open else None
    if not ledger.heartbeat(order_id, number, runner, now, claimed_to=top):
        return None  # presumed dead and taken over: stop here
    if not window_open:
        ledger.set_batch(order_id, number, B.pending, runner=runner)
        return None
    if not rows:
        return None
    suppressions = SuppressionRepository(session)
    suppressed = ahead.suppressed
    if suppressions.stamp() != ahead.opt_outs:
        suppressed = suppressions.among(_macs(rows))
    if suppressed:
        ledger.mark(
            {"id": r.id, "status": R.opted_out, "final_at": now}
            for r in rows
            if r.phone_hmac in suppressed
        )
        TallyRepository(session).refresh([(order_id, number)])  # for the report
        rows = [r for r in rows if r.phone_hmac not in suppressed]
    return order, rows


def record(
    session: Session,
    order_id: str,
    rows: Sequence[Claimed],
    results: Sequence[Submitted],
    now: datetime,
) -> None:
    """What the carrier answered: submitted (with its message id) or failed; every submitted
    message enters the contact history at once (the next quotes see it)."""
    by_ref = {r.id: r for r in rows}
    accepted: list[tuple[int, str, int]] = []
    refused: list[dict[str, object]] = []
    history = []
    for res in results:
        row = by_ref[res.ref]
        if res.uncertain:  # may or may not have gone out: never resent, not billed
            refused.append({"id": row.id, "status": R.unknown, "error": "carrier_interrupted"})
            if row.prospect_id >= 0:  # perhaps contacted: the pressure cap counts it
                history.append((row.phone_hmac, order_id, now))
        elif res.message_id is not None:
            accepted.append((row.id, res.message_id, res.parts))
            if row.prospect_id >= 0:  # control numbers are not prospects
                history.append((row.phone_hmac, order_id, now))
        else:
            refused.append(
                {"id": row.id, "status": R.failed, "error": res.error or "refused", "final_at": now}
            )
    ledger = LedgerRepository(session)
    changed = ledger.mark_submitted(accepted, now)
    more = ledger.mark_submitting(refused)
    _tally(session, order_id, rows, results, changed + more if min(changed, more) >= 0 else -1, now)
    metrics.messages(["submitted"] * len(accepted) + [str(r["status"]) for r in refused])
    ContactHistoryRepository(session).record(history)
    parts = [
        {"recipient_id": res.ref, "message_id": part_id, "seq": seq}
        for res in results
        if len(res.part_ids) > 1
        for seq, part_id in enumerate(res.part_ids, 1)
    ]
    PartsRepository(session).add(parts)
    message_ids = [m for _, m, _ in accepted]
    message_ids += [part_id for res in results for part_id in res.part_ids]
    intake.apply_early(session, message_ids, now)


def _tally(
    session: Session,
    order_id: str,
    rows: Sequence[Claimed],
    results: Sequence[Submitted],
    changed: int,
    now: datetime,
) -> None:
    """The report's tallies of a recorded chunk, by the counts it moved out of `pending`
    when every answer changed its row (one batch, none given up meanwhile), else folded again
    from the batch's rows."""
    tallies = TallyRepository(session)
    batches = {r.batch for r in rows}
    if changed != len(results) or len(batches) != 1:
        tallies.refresh({(order_id, b) for b in batches})
        return
    control = {r.id: r.prospect_id < 0 for r in rows}
    at = tallies.instant_ms(now)
    groups: dict[tuple[bool, str, str | None], list[int]] = {}
    for res in results:
        key: tuple[bool, str, str | None]
        if res.uncertain:
            key = (control[res.ref], UNKNOWN, "carrier_interrupted")
        elif res.message_id is not None:
            key = (control[res.ref], SUBMITTED, None)
        else:
            key = (control[res.ref], FAILED, res.error or "refused")
        group = groups.setdefault(key, [0, 0])
        group[0] += 1
        group[1] += res.parts if res.message_id is not None and not res.uncertain else 0
    moves = []
    for (c, status, error), (n, parts) in groups.items():
        sub = at if status == SUBMITTED else None
        moves.append(Move(c, status, error, n, parts, sub, sub, at if status == FAILED else None))
    if not tallies.shift(order_id, batches.pop(), moves):
        tallies.refresh([(order_id, b) for b in {r.batch for r in rows}])


def carrier_failed(
    session: Session, carrier: str, error: str, now: datetime, order_id: str | None = None
) -> None:
    """The carrier could not take messages (a bind refused, a gateway down, a setting
    missing): its shared status turns `unavailable` at the first failure of a run and keeps
    the last error; the order it was sending for gets one event when its trouble starts, none
    on the retries. The error is the adapter's own wording (never a message's content); phone
    -like digit runs are masked all the same."""
    error = redact(error)
    metrics.carrier_error(carrier)
    status = CarrierStatusRepository(session)
    if status.failed(carrier, error, now):
        log.warning("carrier %s unavailable: %s", carrier, error)
    if order_id is None:
        return
    # After the status row's update: the order's other batches failing at the same moment
    # wait for this transaction, then see its event.
    last = DispatchOrderRepository(session).last_event(order_id, CARRIER_EVENTS)
    if last is not None and last.action == CARRIER_UNAVAILABLE:
        return  # already said, and not over
    row = status.get(carrier)
    since = row.since if row is not None and row.state == UNAVAILABLE else now
    OrderRepository(session).add_event(
        order_id,
        now,
        None,
        "system",
        CARRIER_UNAVAILABLE,
        details={"carrier": carrier, "since": since.isoformat(), "last_error": error},
    )


def carrier_answered(
    session: Session, carrier: str, now: datetime, order_id: str | None = None
) -> None:
    """The carrier took (or answered) what it was given: its status is `ok` again, and an
    order whose sending it held up gets an event saying that it goes on."""
    if CarrierStatusRepository(session).succeeded(carrier, now, SUCCESS_EVERY):
        log.warning("carrier %s available again", carrier)
    if order_id is None:
        return
    orders_ = DispatchOrderRepository(session)
    last = orders_.last_event(order_id, CARRIER_EVENTS)
    if last is None or last.action != CARRIER_UNAVAILABLE:
        return  # the usual case: one indexed read per chunk
    # The order's batches recovering at once take turns here: one event, not one each.
    OrderRepository(session).lock(order_id, None)
    last = orders_.last_event(order_id, CARRIER_EVENTS)
    if last is not None and last.action == CARRIER_UNAVAILABLE:
        OrderRepository(session).add_event(
            order_id,
            now,
            None,
            "system",
            CARRIER_RECOVERED,
            details={
                "carrier": carrier,
                "unavailable_since": last.details.get("since", last.at.isoformat()),
            },
        )


def carrier_unavailable(
    session: Session,
    order_id: str,
    number: int,
    runner: str,
    rows: Sequence[Claimed],
    failure: CarrierUnavailable,
    carrier: str,
    now: datetime,
) -> float:
    """The carrier failed transiently in the middle of a chunk: record what it accepted, give
    up on what it may have received (unknown, never resent), put the rest back, back off, and
    say so (the carrier's status, an event on the order). Returns the back-off in seconds."""
    record(session, order_id, rows, failure.accepted, now)
    carrier_failed(session, carrier, failure.reason, now, order_id)
    ledger = LedgerRepository(session)
    ledger.mark_submitting(
        {"id": ref, "status": R.unknown, "error": "carrier_interrupted"}
        for ref in failure.uncertain
    )
    # Perhaps contacted: the pressure cap counts them (control numbers are not prospects).
    by_ref = {r.id: r for r in rows}
    perhaps = [by_ref[ref] for ref in failure.uncertain if ref in by_ref]
    ContactHistoryRepository(session).record(
        (r.phone_hmac, order_id, now) for r in perhaps if r.prospect_id >= 0
    )
    ledger.unclaim(order_id, number, [r.id for r in rows])
    TallyRepository(session).refresh([(order_id, number)])  # for the report
    batch = ledger.batch(order_id, number)
    attempts = (batch.attempts if batch else 0) + 1
    delay = float(min(BACKOFF_MAX_SECONDS, 2**attempts))
    ledger.set_batch(
        order_id,
        number,
        B.pending,
        runner=runner,
        attempts=attempts,
        not_before=now + timedelta(seconds=delay),
    )
    return delay


def end_batch(session: Session, order_id: str, number: int, runner: str) -> None:
    """The run of a batch stops (done, or its window closed): the batch is done when nobody is
    left to send, pending again otherwise (for the next opening)."""
    ledger = LedgerRepository(session)
    left = ledger.pending_in_batch(order_id, number)
    ledger.set_batch(order_id, number, B.pending if left else B.done, runner=runner)
