"""The SMPP carrier against a small SMSC on 127.0.0.1 (tests/dispatch/smsc.py): binds,
GSM-7 and UCS-2, concatenation, windowing, throttling, permanent refusals, a dropped
connection, enquire_link, and receipts and replies taken on a receiver bind."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from datasets import snapshot
from dispatch import flows, intake
from dispatch.carriers.base import CarrierUnavailable, Outgoing, Receipt, Reply
from dispatch.carriers.smpp import SmppCarrier, encode_parts
from dispatch.models import Recipient
from dispatch.repository import LedgerRepository
from kit.db import unit_of_work
from kit.errors import ConfigurationError
from kit.settings import Settings, get_settings
from sales.messages.service import measure
from segmentation.repository import SuppressionRepository
from tests.conftest import ScanningClient
from tests.dispatch.smsc import TestSmsc
from tests.factories import first_chunk, started_order

SHORT = "Soldes -20% chez ACME ce week-end. STOP au 36180"
# 2 parts in GSM-7, with euro signs (an escape pair, 2 septets each) around the part boundary.
LONG_GSM = ("Offre speciale: " + "tout a 10€ " * 14 + "jusqu'a dimanche. STOP au 36180")[:300]
LONG_UCS2 = "Été 🌞 : -30% sur tout le magasin, venez vite ! " * 3 + "STOP au 36180"


@pytest.fixture
def smsc(base: snapshot.Snapshot, settings: Callable[..., Settings]) -> Iterator[TestSmsc]:
    with TestSmsc() as server:
        settings(
            carrier="smpp",
            smpp_host="127.0.0.1",
            smpp_port=server.port,
            smpp_system_id="rental",
            smpp_password="secret",
            smpp_window=8,
            smpp_timeout_seconds=2,
        )
        try:
            yield server
        finally:
            SmppCarrier.hang_up()  # this SMSC is going away: no bind reused after it


def carrier() -> SmppCarrier:
    """The carrier as a worker builds it, with the SMPP settings of the moment."""
    return SmppCarrier(get_settings().carriers.smpp)


def outgoing(numbers: list[str], text: str = SHORT, encoding: str = "GSM-7") -> list[Outgoing]:
    return [Outgoing(i + 1, n, "ACME", text, encoding) for i, n in enumerate(numbers)]


def digits(number: str) -> str:
    return number.lstrip("+")


def test_gsm7_messages_are_submitted_through_a_window(
    smsc: TestSmsc, base_numbers: list[str]
) -> None:
    numbers = base_numbers[:30]
    results, feedback = carrier().submit(outgoing(numbers))
    assert [r.ref for r in results] == list(range(1, 31))
    assert all(r.message_id and r.parts == 1 for r in results)
    assert len({r.message_id for r in results}) == 30
    assert smsc.binds == ["transmitter"]
    assert smsc.max_outstanding > 1  # windowed: several submit_sm await their answer at once
    assert smsc.max_outstanding <= 8
    got = smsc.messages()
    assert sorted(d for d, *_ in got) == sorted(digits(n) for n in numbers)
    assert {(text, parts, coding) for _, text, parts, coding in got} == {(SHORT, 1, 0)}
    first = smsc.accepted()[0]
    assert (first.source, first.source_ton, first.registered_delivery) == ("ACME", 5, 1)
    assert feedback.receipts == []  # receipts come on the receiver bind


@pytest.mark.parametrize(
    ("text", "encoding", "coding"), [(LONG_GSM, "GSM-7", 0), (LONG_UCS2, "UCS-2", 8)]
)
def test_long_messages_are_concatenated(
    smsc: TestSmsc, base_numbers: list[str], text: str, encoding: str, coding: int
) -> None:
    expected = measure(text)
    assert expected.segments > 1
    assert expected.encoding == encoding
    results, _ = carrier().submit(outgoing(base_numbers[:3], text, encoding))
    assert all(r.parts == expected.segments == len(r.part_ids) for r in results)
    got = smsc.messages()
    assert len(got) == 3
    assert {(t, parts, c) for _, t, parts, c in got} == {(text, expected.segments, coding)}
    assert all(s.esm_class & 0x40 for s in smsc.accepted())  # user data header present


def test_a_gsm_escape_pair_is_never_cut_between_parts() -> None:
    text = "x" * 152 + "€" + "y" * 10  # the euro sign's two septets straddle 153
    parts, coding, esm_class = encode_parts(text, "GSM-7")
    assert (coding, esm_class, len(parts)) == (0, 0x40, 2)
    assert all(len(p) - 6 <= 153 for p in parts)
    assert b"".join(p[6:] for p in parts).decode("gsm03.38") == text


@pytest.mark.parametrize(
    "text",
    [
        "a" * 152 + "€" + "a" * 150 + "€",  # escape pairs pushed over part boundaries
        "é" * 66 + "😀" + "é" * 66,  # a surrogate pair at a UCS-2 boundary
        "b" * 160,
        "b" * 161,
        LONG_GSM,
        LONG_UCS2,
    ],
)
def test_messages_are_sent_in_as_many_parts_as_were_quoted_and_billed(text: str) -> None:
    quoted = measure(text)
    parts, _, _ = encode_parts(text, quoted.encoding)
    assert len(parts) == quoted.segments


def test_throttling_is_retried_and_nobody_gets_two_messages(
    smsc: TestSmsc, base_numbers: list[str]
) -> None:
    smsc.throttle = 5
    results, _ = carrier().submit(outgoing(base_numbers[:12]))
    assert all(r.message_id for r in results)
    accepted = Counter(s.destination for s in smsc.accepted())
    assert len(accepted) == 12
    assert max(accepted.values()) == 1
    assert sum(1 for s in smsc.submissions if s.message_id is None) == 5


def test_throttling_that_lasts_hands_the_rest_back(
    smsc: TestSmsc, base_numbers: list[str], settings: Callable[..., Settings]
) -> None:
    settings(smpp_throttle_wait_seconds=0.3)
    smsc.throttle = 10_000
    with pytest.raises(CarrierUnavailable) as waited:
        carrier().submit(outgoing(base_numbers[:6]))
    assert waited.value.accepted == []
    assert waited.value.uncertain == []


def test_a_refused_destination_is_failed_and_not_retried(
    smsc: TestSmsc, base_numbers: list[str]
) -> None:
    numbers = base_numbers[:4]
    smsc.refuse = {digits(numbers[2])}
    results, _ = carrier().submit(outgoing(numbers))
    refused = [r for r in results if r.message_id is None]
    assert [(r.ref, r.error, r.permanent) for r in refused] == [(3, "invalid_destination", True)]
    assert sum(1 for s in smsc.submissions if s.destination == digits(numbers[2])) == 1


def test_a_refused_bind_or_an_absent_smsc_says_why_and_hands_everything_back(
    smsc: TestSmsc, base_numbers: list[str], settings: Callable[..., Settings]
) -> None:
    smsc.password = "other"  # the account's password was changed at the SMSC
    with pytest.raises(CarrierUnavailable) as refused:
        carrier().submit(outgoing(base_numbers[:3]))
    assert refused.value.reason == (
        "the SMSC refused the transmitter bind: Invalid Password (status 0x0e): check "
        "RENTAL_SMPP_SYSTEM_ID, RENTAL_SMPP_PASSWORD and RENTAL_SMPP_SYSTEM_TYPE"
    )
    assert "secret" not in refused.value.reason  # the password itself never
    assert (refused.value.accepted, refused.value.uncertain) == ([], [])
    assert smsc.submissions == []
    settings(smpp_port=9)  # nothing listens there
    with pytest.raises(CarrierUnavailable) as absent:
        carrier().submit(outgoing(base_numbers[:3]))
    assert absent.value.reason.startswith("the SMSC at 127.0.0.1:9 cannot be reached")
    assert (absent.value.accepted, absent.value.uncertain) == ([], [])


def test_a_connection_lost_mid_window_resumes_and_never_resends(
    smsc: TestSmsc, base_numbers: list[str]
) -> None:
    numbers = base_numbers[:40]
    smsc.response_delay = 0.02
    smsc.drop_at = 12  # the 12th submit_sm closes the connection, unanswered
    results, _ = carrier().submit(outgoing(numbers))
    assert smsc.binds == ["transmitter", "transmitter"]  # bound again, then went on
    assert sorted(r.ref for r in results) == list(range(1, 41))  # everyone has an outcome
    uncertain = {r.ref for r in results if r.uncertain}
    assert uncertain  # in flight when the line dropped: may or may not have been taken
    seen = Counter(s.destination for s in smsc.submissions)
    assert max(seen.values()) == 1  # nobody was submitted twice
    for r in results:
        if r.uncertain:
            assert r.message_id is None
        else:
            assert r.message_id is not None


def test_a_bind_the_smsc_closed_while_idle_is_replaced_before_sending(
    smsc: TestSmsc, base_numbers: list[str]
) -> None:
    carrier().submit(outgoing(base_numbers[:2]))
    smsc.hang_up_all()  # the SMSC restarts between two batches
    results, _ = carrier().submit(outgoing(base_numbers[2:5]))
    assert all(r.message_id for r in results)  # nobody lost to a dead connection
    assert smsc.binds == ["transmitter", "transmitter"]


def test_an_idle_bind_is_checked_with_enquire_link(
    smsc: TestSmsc, base_numbers: list[str], settings: Callable[..., Settings]
) -> None:
    carrier().submit(outgoing(base_numbers[:2]))
    settings(smpp_enquire_link_seconds=0.05)
    time.sleep(0.1)  # idle for longer than that
    carrier().submit(outgoing(base_numbers[2:4]))
    assert smsc.enquire_links >= 1
    assert smsc.binds == ["transmitter"]  # the same bind, found alive


def test_receipts_and_replies_are_taken_on_a_receiver_bind(
    smsc: TestSmsc, base_numbers: list[str]
) -> None:
    numbers = base_numbers[:5]
    smsc.outcome = lambda d: "UNDELIV" if d == digits(numbers[1]) else "DELIVRD"
    results, _ = carrier().submit(outgoing(numbers))
    smsc.mo(digits(numbers[3]), "Stop")
    smsc.wait(lambda: len(smsc.queue) == 6)
    taken: list[Any] = []

    def broken(receipts: list[Receipt], replies: list[Reply]) -> None:
        raise RuntimeError("the database is down")

    with pytest.raises(RuntimeError):
        carrier().receive(broken)
    smsc.wait(lambda: len(smsc.queue) == 6)  # nothing acknowledged: all given back
    assert smsc.acknowledged == []

    carrier().receive(lambda receipts, replies: taken.extend(receipts + replies))
    assert smsc.enquire_answers == 2  # the receiver answers the SMSC's enquire_link
    receipts = {r.message_id: r for r in taken if isinstance(r, Receipt)}
    by_ref = {r.ref: r.message_id or "" for r in results}
    assert receipts[by_ref[2]].status == "failed"
    assert (receipts[by_ref[2]].error or "").startswith("undeliverable")
    assert {receipts[by_ref[i]].status for i in (1, 3, 4, 5)} == {"delivered"}
    [reply] = [r for r in taken if isinstance(r, Reply)]
    assert reply.text == "Stop"
    assert reply.number == numbers[3]
    assert len(smsc.acknowledged) == 6
    assert not smsc.queue


def test_multipart_receipts_settle_the_recipient_once_every_part_is_in(
    smsc: TestSmsc, app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """Through the real flow: ledger, SMPP submission of 2-part messages, receipts per part,
    and a STOP reply that opts the number out."""
    order, now = started_order(app_client, org_keys, {"departments": ["49"]}, 100)
    rows = first_chunk(order["id"], now, 4)
    from datasets.vault import decrypt_number
    from kit import keys

    key = keys.vault_key()
    numbers = {r.id: decrypt_number(key, r.phone_enc, r.prospect_id) for r in rows}
    messages = [Outgoing(r.id, numbers[r.id], "ACME", LONG_GSM, "GSM-7") for r in rows]
    ids = [r.id for r in rows]
    failing = digits(numbers[ids[1]])
    smsc.outcome = lambda d: "EXPIRED" if d == failing else "DELIVRD"
    smsc.receipts_on = False  # receipts held back: first the submissions are recorded
    results, _ = carrier().submit(messages)
    assert all(r.parts == 2 for r in results)
    with unit_of_work() as session:
        flows.record(session, order["id"], rows, results, now)

    def record(receipts: list[Receipt], replies: list[Reply]) -> None:
        with unit_of_work() as session:
            intake.apply_receipts(session, receipts, now)
            intake.apply_replies(session, replies, "smpp", now)

    # Only the first part's receipt of every message: nobody is delivered yet, but a part
    # that expired settles its message at once.
    for s in smsc.accepted():
        if s.short_message[5] == 1:
            smsc.receipt(s)
    smsc.wait(lambda: len(smsc.queue) == 4)
    carrier().receive(record)
    assert _statuses(ids) == ["submitted", "expired", "submitted", "submitted"]
    for s in smsc.accepted():
        if s.short_message[5] == 2:
            smsc.receipt(s)
    smsc.mo(digits(numbers[ids[2]]), "ARRÊT")
    smsc.wait(lambda: len(smsc.queue) == 5)
    carrier().receive(record)
    assert _statuses(ids) == ["delivered", "expired", "delivered", "delivered"]
    with unit_of_work() as session:
        row = LedgerRepository(session).by_ids([ids[2]])[0]
        assert SuppressionRepository(session).among([row.phone_hmac])  # opted out at once


def _statuses(ids: list[int]) -> list[str]:
    with unit_of_work() as session:
        rows = session.execute(select(Recipient.id, Recipient.status).where(Recipient.id.in_(ids)))
        found = {i: s for i, s in rows}
    return [found[i] for i in ids]


def test_a_synthetic_base_is_only_sent_to_a_local_smsc(
    base: snapshot.Snapshot, settings: Callable[..., Settings]
) -> None:
    assert base.synthetic
    settings(smpp_host="smsc.example.net")
    with pytest.raises(ConfigurationError, match="synthetic"):
        carrier()
    settings(smpp_host="127.0.0.1")
    carrier()  # loopback: allowed (nothing connects until a batch is submitted)


def test_one_receiver_bind_takes_everything_through_the_smsc_window(
    smsc: TestSmsc, base_numbers: list[str]
) -> None:
    """The SMSC keeps at most 10 deliver_sm unacknowledged: acknowledging as soon as what
    arrived is recorded keeps them coming, so a single bind empties the queue."""
    carrier().submit(outgoing(base_numbers[:50]))
    smsc.wait(lambda: len(smsc.queue) == 50)
    commits: list[int] = []
    taken = carrier().receive(lambda receipts, replies: commits.append(len(receipts)))
    assert taken == 50
    assert sum(commits) == 50
    assert max(commits) <= 10  # recorded (committed) before each acknowledgement
    assert not smsc.queue
