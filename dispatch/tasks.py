"""Celery entry points. Tasks take ids, reload state, and are safe to run twice; each step
commits before the next one is enqueued."""

from __future__ import annotations

import json
import logging
import secrets
import time
from functools import partial
from typing import Any

import redis
from celery import shared_task
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from datasets.geography import is_overseas
from datasets.vault import decrypt_numbers
from dispatch import carriers, flows, intake
from dispatch.carriers.base import (
    Carrier,
    CarrierUnavailable,
    Feedback,
    Outgoing,
    Receipt,
    Reply,
    Submitted,
)
from dispatch.repository import Claimed, LedgerRepository
from kit import clock, keys, redisd
from kit.db import retried, unit_of_work
from kit.errors import ConfigurationError
from kit.settings import get_settings
from sales.messages.service import Mentions
from sales.orders.exceptions import StaleSnapshot
from sales.orders.models import Order
from segmentation import runtime
from segmentation.exceptions import ExclusionFileNotReady

log = logging.getLogger(__name__)
# Recipients claimed, submitted and recorded per transaction: a batch (settings.batch_size,
# 1,000 by default) in one chunk, so that the ledger's fixed costs per transaction are paid
# once per thousand messages. Under a cap, a tenth of a second's worth (see `_throttle`): the
# carrier sees the rate within any second, not a second's messages in one burst.
CHUNK = 1000
CAPPED_CHUNKS_PER_S = 10


@shared_task(name="dispatch.tick")
def tick() -> None:
    """Start the orders that are due, and enqueue the batches whose window is open."""
    r = redisd.client()
    # Ticks running side by side would be safe (every step is a compare-and-set); this only
    # saves work. Short-lived, so that a worker killed mid-tick does not stall the schedule.
    if not r.set("rental:tick", "1", nx=True, ex=10):
        return  # another tick is running
    try:
        now = clock.now()
        with unit_of_work() as session:
            due = flows.due(session, now)
        for order_id in due:
            try:
                with unit_of_work() as session:
                    if flows.start(session, order_id, runtime.current(), now):
                        log.info("order %s: dispatch started", order_id)
            except StaleSnapshot as exc:  # rolled back: a worker of an up-to-date host starts it
                log.warning("order %s not started on this host: %s", order_id, exc.detail)
            except ExclusionFileNotReady:  # rolled back: started once its file is matched again
                log.info("order %s waits for its exclusion files to be matched", order_id)
            except Exception:  # rolled back; the other due orders, receipts and sends go on
                log.exception(
                    "order %s could not be started: tried again at the next tick", order_id
                )
        # What a drainer killed or out of lease left (a round at most: the tick has more to do).
        drain_receipts(r, most=DRAIN_DELIVERIES)
        with unit_of_work() as session:  # receipts kept as early whose message is recorded
            intake.sweep_early(session, now)
        if get_settings().carriers.name == "smpp" and r.set("rental:receive", "1", nx=True, ex=60):
            receive.delay()  # what the SMSC holds for us: receipts and replies
        with unit_of_work() as session:
            active = flows.dispatching(session)
        for order_id in active:
            try:
                with unit_of_work() as session:
                    ready = flows.pump(session, order_id, clock.now())
            except Exception:  # one order's trouble holds up no other's batches
                log.exception("order %s: its batches could not be enqueued this tick", order_id)
                continue
            for number in ready:  # enqueued after the commit that marked them
                send_batch.delay(order_id, number)
    finally:
        r.delete("rental:tick")


# A shared schedule (generic cell rate algorithm): the key holds the instant the carrier is
# free again; a chunk of n messages books the next n / cap seconds and waits for its slot.
# Atomic in Redis, so every worker of every machine shares one rate.
_BOOK = """
local free_at = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
if free_at < now then free_at = now end
redis.call('SET', KEYS[1], tostring(free_at + tonumber(ARGV[2])), 'EX', 3600)
return tostring(free_at)
"""


def _throttle(n: int) -> None:
    """Wait for this chunk's slot under the carrier's cap (messages per second)."""
    s = get_settings()
    cap = s.carriers.rate_per_second
    if not cap:
        return
    r = redisd.client()
    deadline = time.monotonic() + 60
    while True:
        try:
            slot = float(r.eval(_BOOK, 1, f"rental:rate:{s.carriers.name}", time.time(), n / cap))
            break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)  # Redis restarting: the cap is shared through it, so wait
    time.sleep(max(0.0, slot - time.time()))


@shared_task(name="dispatch.send_batch")
def send_batch(order_id: str, number: int) -> None:
    """Send one batch: claim recipients a chunk at a time (each chunk committed as
    `submitting` before anything is submitted), check the window right before submitting,
    decrypt the numbers in memory, submit, record."""
    now = clock.now()
    runner = secrets.token_hex(8)
    carrier = _carrier(order_id)
    if carrier is None:
        return  # said on the order and in the carrier's status; enqueued again later
    key = keys.vault_key()
    s = get_settings()
    cap = s.carriers.rate_per_second
    size = max(1, min(CHUNK, cap // CAPPED_CHUNKS_PER_S)) if cap else CHUNK
    with unit_of_work() as session:
        if not LedgerRepository(session).claim_batch(order_id, number, now, runner):
            return  # already running or done: a second delivery of this task
        claimed, ready = _next(session, order_id, number, runner, size, True)
    while claimed is not None:
        order, rows = claimed
        results: list[Submitted] = []
        feedback = Feedback()
        if rows:
            messages = _messages(key, order, rows)
            _throttle(len(messages))
            try:
                results, feedback = carrier.submit(messages)
            except CarrierUnavailable as failure:
                del messages
                with unit_of_work() as session:
                    delay = flows.carrier_unavailable(
                        session, order_id, number, runner, rows, failure, carrier.name, clock.now()
                    )
                log.warning(
                    "order %s batch %s: carrier unavailable (%s), retrying in %.0f s",
                    order_id,
                    number,
                    failure.reason,
                    delay,
                )
                return
            del messages  # the numbers leave memory with the batch
        # One transaction records this chunk and claims the next (committed as `submitting`
        # before it is submitted), or ends the batch: fewer turns on SQLite's write lock. It is
        # run again if the database gives up on it: the carrier took these messages, and an
        # unrecorded one would end `unknown`, never billed.
        # The carrier answered (took or refused messages): it works. A chunk whose every
        # message was lost in flight says nothing either way.
        answered = carrier.name if any(not r.uncertain for r in results) else None
        claimed, ready = retried(
            partial(_record_and_next, order_id, number, runner, size, rows, results, answered)
        )
        _later(feedback)
    for n in ready:  # enqueued after the commit that marked them
        send_batch.delay(order_id, n)


def _messages(key: bytes, order: Order, rows: list[Claimed]) -> list[Outgoing]:
    """The chunk's messages: numbers decrypted in memory, each text composed for its
    recipient (civility, the STOP mention or link of where they live)."""
    numbers = decrypt_numbers(key, [r.phone_enc for r in rows], [r.prospect_id for r in rows])
    mentions = Mentions(get_settings().messages)
    return [
        Outgoing(
            ref=r.id,
            number=number,
            sender=order.sender,
            text=mentions.compose(
                order.message,
                r.sex,
                metropolitan=not is_overseas(r.department),
                stop_link=mentions.stop_link(r.stop_token) if r.stop_token else None,
            ),
            encoding=order.encoding,
        )
        for r, number in zip(rows, numbers, strict=True)
    ]


def _record_and_next(
    order_id: str,
    number: int,
    runner: str,
    size: int,
    rows: list[Claimed],
    results: list[Submitted],
    answered: str | None,
    session: Session,
) -> tuple[tuple[Order, list[Claimed]] | None, list[int]]:
    # A short chunk was the last (one cut short by opt-outs: end_batch finds the batch still
    # pending, and the next tick enqueues it again). The next chunk is read before this one is
    # recorded: on SQLite the reads then wait for no one and hold no one up (the write lock is
    # taken at the first write).
    more = len(rows) == size
    ahead = flows.look_ahead(session, order_id, number, size, clock.now()) if more else None
    flows.record(session, order_id, rows, results, clock.now())
    if answered is not None:
        flows.carrier_answered(session, answered, clock.now(), order_id)
    return _next(session, order_id, number, runner, size, more, ahead)


def _carrier(order_id: str | None = None) -> Carrier | None:
    """The configured carrier; None when it cannot be used as configured (a setting missing,
    a synthetic base bound for a real network): said in the carrier's status and on the
    order, instead of a task failing in the worker's log only."""
    s = get_settings()
    try:
        return carriers.current(s.carriers, s.home)
    except ConfigurationError as exc:
        name = s.carriers.name
        log.error("carrier %s cannot be used: %s", name, exc.detail)
        with unit_of_work() as session:
            flows.carrier_failed(session, name, exc.detail, clock.now(), order_id)
        return None


def _next(
    session: Session,
    order_id: str,
    number: int,
    runner: str,
    size: int,
    more: bool,
    ahead: flows.Ahead | None = None,
) -> tuple[tuple[Order, list[Claimed]] | None, list[int]]:
    """The next chunk of a batch (claimed from what `ahead` read, if given), or (nothing
    left, window closed, batch lost) the end of the batch's run and the batches to enqueue
    now."""
    if more:
        now = clock.now()
        if ahead is None:
            ahead = flows.look_ahead(session, order_id, number, size, now)
        claimed = flows.take(session, order_id, number, runner, now, ahead)
        if claimed is not None:
            return claimed, []
    flows.end_batch(session, order_id, number, runner)
    return None, flows.pump(session, order_id, clock.now())


def _later(feedback: Feedback) -> None:
    """The simulator's receipts and replies, delivered after a short delay through intake."""
    if not feedback.receipts and not feedback.replies:
        return
    # Plain lists, not dicts: a thousand receipts per chunk cross the broker as JSON.
    feedback_task.apply_async(
        args=(
            [[r.message_id, r.status, r.error] for r in feedback.receipts],
            [[r.text, r.message_id, r.number] for r in feedback.replies],
        ),
        countdown=get_settings().carriers.simulator.receipt_delay_seconds,
    )


def _receipt(item: list[Any] | dict[str, Any]) -> Receipt:
    return Receipt(**item) if isinstance(item, dict) else Receipt(*item)


def _reply(item: list[Any] | dict[str, Any]) -> Reply:
    return Reply(**item) if isinstance(item, dict) else Reply(*item)


@shared_task(name="dispatch.feedback")
def feedback_task(
    receipts: list[list[Any] | dict[str, Any]], replies: list[list[Any] | dict[str, Any]]
) -> None:
    """The simulator's receipts and replies (lists of fields; dicts from earlier versions).
    Replies (rare, and holding numbers) are applied at once; receipts join the shared list
    that one drainer at a time applies, many deliveries per transaction."""
    taken = [_receipt(r) for r in receipts]  # a malformed delivery fails here, not in the list
    answers = [_reply(r) for r in replies]
    if answers:
        now = clock.now()
        retried(lambda session: intake.apply_replies(session, answers, "simulator", now))
    if not taken:
        return
    try:
        r = redisd.client()
        r.rpush(RECEIPTS, json.dumps([[x.message_id, x.status, x.error] for x in taken]))
    except redis.exceptions.ConnectionError:  # Redis restarting: apply them here, alone
        now = clock.now()
        retried(lambda session: intake.apply_receipts(session, taken, now))
        return
    drain_receipts(r)


# Delivery receipts wait in one Redis list (a delivery of a chunk's receipts per item: carrier
# message ids and outcomes, nothing personal) and one drainer at a time, holding a lease,
# applies up to DRAIN_DELIVERIES of them per transaction: the pool processes stop taking turns
# on the database for a thousand receipts each. Items leave the list only after their
# transaction committed, and only while the lease is still the drainer's (checked with the
# trim, atomically), so a drainer killed or too slow leaves them to the next one. Applying a
# receipt twice changes nothing (only `submitted` recipients take one).
RECEIPTS = "rental:receipts"
DRAINING = "rental:receipts:draining"
DRAIN_DELIVERIES = 20
DRAIN_LEASE_SECONDS = 120
_TRIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def drain_receipts(r: redis.Redis | None = None, most: int | None = None) -> int:
    """Apply the receipts waiting in the shared list (at most `most` deliveries), unless
    another drainer holds the lease (it applies them). Returns how many deliveries this call
    applied."""
    r = r if r is not None else redisd.client()
    token = secrets.token_hex(8)
    applied = 0
    # Again while some are left: one pushed just before the lease was released is ours.
    while (
        (most is None or applied < most)
        and r.llen(RECEIPTS)
        and r.set(DRAINING, token, nx=True, ex=DRAIN_LEASE_SECONDS)
    ):
        try:
            while (most is None or applied < most) and (
                items := r.lrange(RECEIPTS, 0, DRAIN_DELIVERIES - 1)
            ):
                _apply_deliveries([json.loads(item) for item in items])
                trim = (DRAINING, RECEIPTS, token, len(items), DRAIN_LEASE_SECONDS)
                if not r.eval(_TRIM, 2, *trim):
                    return applied  # the lease ran out: the next drainer applies them again
                applied += len(items)
        finally:
            r.eval(_RELEASE, 1, DRAINING, token)
    return applied


def _apply_deliveries(deliveries: list[list[list[Any]]]) -> None:
    """Several deliveries' receipts in one transaction. Should that fail for a reason other
    than the database being unavailable (which leaves them waiting), each delivery is applied
    alone, and one that fails alone is dropped with a log line (as its own task would have
    failed), so that it cannot hold up the others."""
    now = clock.now()
    try:
        receipts = [_receipt(x) for delivery in deliveries for x in delivery]
        retried(lambda session: intake.apply_receipts(session, receipts, now))
    except OperationalError:
        raise
    except Exception:
        if len(deliveries) > 1:
            for delivery in deliveries:
                _apply_deliveries([delivery])
            return
        log.exception("a delivery of %d receipts could not be applied: dropped", len(deliveries[0]))


@shared_task(name="dispatch.receive")
def receive() -> None:
    """Take the receipts and replies an SMSC holds for us (carrier `smpp`): each chunk is
    recorded, then acknowledged; what is not acknowledged the SMSC delivers again."""
    try:
        carrier = _carrier()
        take = getattr(carrier, "receive", None)
        if carrier is None or take is None:
            return

        def record(receipts: list[Receipt], replies: list[Reply]) -> None:
            def apply(session: Session) -> None:
                now = clock.now()
                intake.apply_receipts(session, receipts, now)
                intake.apply_replies(session, replies, carrier.name, now)

            retried(apply)

        try:
            take(record)
        except CarrierUnavailable as failure:
            log.warning("receipts not taken: %s", failure.reason)
            with unit_of_work() as session:
                flows.carrier_failed(session, carrier.name, failure.reason, clock.now())
        else:  # bound: the carrier takes our credentials again
            with unit_of_work() as session:
                flows.carrier_answered(session, carrier.name, clock.now())
    finally:
        redisd.client().delete("rental:receive")
