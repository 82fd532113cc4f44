"""The rights of the people in the base, end to end: a code by simulated SMS, the record, the
objection and the erasure, the staff queue; the same answer and timing for numbers in and out
of the base; retention and erasure at the base refresh."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from statistics import median

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from celery import current_app
from sqlalchemy import select
from typer.testing import CliRunner

from datasets import snapshot
from datasets.cli import refresh_with_purge
from datasets.erasures import ErasureRepository
from datasets.generate import _noop
from datasets.refresh import PROOFS
from datasets.vault import decrypt_number
from dispatch import carriers
from dispatch.carriers.base import Feedback, Outgoing, Submitted
from dispatch.models import Recipient
from dispatch.repository import LedgerRepository
from dispatch.tasks import send_batch
from kit import clock, keys
from kit.db import unit_of_work
from kit.settings import Settings, get_settings
from rental import cli
from segmentation import runtime
from segmentation.criteria import Criteria
from segmentation.repository import SuppressionRepository
from subjects import flows, service, tasks
from subjects.models import Challenge
from subjects.repository import RequestRepository
from tests.conftest import ScanningClient, auth
from tests.exclusions import people_of
from tests.factories import (
    at_send_time,
    create_order,
    create_quote,
    own_base,
    pay_deposit,
    send_in_process,
    started_order,
)
from tests.rights import CODE, ask, inbox, prove


def number_of(base: snapshot.Snapshot, prospect_id: int) -> str:
    table = pq.read_table(base.contacts, columns=["prospect_id", "phone_enc"])
    ids = table.column("prospect_id").to_pylist()
    blob = table.column("phone_enc")[ids.index(prospect_id)].as_py()
    return decrypt_number(keys.vault_key(), blob, prospect_id)


def outsiders(base_numbers: list[str], known: set[str], n: int) -> list[str]:
    """Valid mobile numbers that are not in the base, made from the base's own."""
    out: list[str] = []
    for number in base_numbers:
        for tail in range(100):
            other = number[:-2] + f"{tail:02d}"
            if other not in known and other.startswith(("+336", "+337")):
                out.append(other)
                break
        if len(out) == n:
            return out
    raise AssertionError("not enough numbers outside the base")


def test_a_recipient_sees_their_record_objects_and_asks_erasure(
    app_client: ScanningClient, org_keys: dict[str, str], base: snapshot.Snapshot
) -> None:
    quote = create_quote(app_client, org_keys["acme"], {"regions": ["11", "84"]})
    order = create_order(app_client, org_keys["acme"], quote, quantity=300)
    assert pay_deposit(app_client, org_keys["acme"], org_keys["am"], order["id"]).status_code == 201
    send_in_process(order["id"], at_send_time(order))
    with unit_of_work() as session:
        someone = session.scalars(
            select(Recipient.prospect_id).where(
                Recipient.order_id == order["id"], Recipient.prospect_id >= 0
            )
        ).first()
    assert someone is not None
    access = prove(app_client, number_of(base, someone))

    record = app_client.get("/v1/rights/record", headers=access).json()
    assert record["in_base"] is True
    assert record["consent"]["proof_ref"].startswith("PRF-")
    assert record["consent"]["source"]
    assert record["attributes"]["region"] in ("11", "84")
    assert [c["sender"] for c in record["campaigns"]] == [order["sender"]]
    assert record["opted_out"] is False
    assert record["erasure"] == "none"

    assert app_client.post("/v1/rights/objection", headers=access).status_code == 200
    assert app_client.post("/v1/rights/erasure", headers=access).status_code == 200
    record = app_client.get("/v1/rights/record", headers=access).json()
    assert record["opted_out"] is True
    assert record["erasure"] == "pending"
    assert [r["kind"] for r in record["requests"]] == ["objection", "erasure"]
    # The records of processing list the rental, with no personal data.
    day = datetime.fromisoformat(order["send_at"]).date()
    period = {"start": f"{day}T00:00:00Z", "end": f"{day + timedelta(days=1)}T00:00:00Z"}
    assert app_client.get("/v1/rights/rentals", params=period).status_code == 401
    listed = app_client.get("/v1/rights/rentals", params=period, headers=auth(org_keys["am"]))
    [line] = [x for x in listed.json() if x["order_id"] == order["id"]]
    assert (line["customer"], line["sender"], line["ordered"]) == ("Acme", order["sender"], 300)
    assert 0 < line["sent"] <= 300
    assert line["criteria"]["regions"] == ["11", "84"]
    printed = CliRunner().invoke(
        cli.app, ["rights", "rentals", "--start", f"{day}", "--end", f"{day + timedelta(days=1)}"]
    )
    assert printed.exit_code == 0, printed.output
    assert order["id"] in printed.output
    assert not app_client.canary.hits(printed.output)
    # Without the access, nothing.
    assert app_client.get("/v1/rights/record").status_code == 401
    assert (
        app_client.get("/v1/rights/record", headers={"X-Rights-Access": "x" * 40}).status_code
        == 401
    )


def test_the_answer_and_its_timing_are_the_same_in_and_out_of_the_base(
    app_client: ScanningClient,
    base_numbers: list[str],
    secrets_of_base: dict[str, set[str]],
    settings: Callable[..., Settings],
) -> None:
    settings(rights_per_address_hourly=1000)
    inside = [n for n in base_numbers if n.startswith(("+336", "+337"))][:30]
    outside = outsiders(base_numbers, secrets_of_base["numbers"], len(inside))
    for number in inside[:3] + outside[:3]:  # warm up: first requests pay for imports
        app_client.post("/v1/rights/codes", json={"number": number[:-1] + "9"})
    times: dict[str, list[float]] = {"in": [], "out": []}
    bodies: dict[str, set[tuple[int, str, tuple[str, ...]]]] = {"in": set(), "out": set()}
    for a, b in zip(inside, outside, strict=True):
        for kind, number in (("in", a), ("out", b)):
            start = time.perf_counter()
            response = app_client.post("/v1/rights/codes", json={"number": number})
            times[kind].append(time.perf_counter() - start)
            body = response.json()
            bodies[kind].add((response.status_code, body["detail"], tuple(sorted(body))))
    assert bodies["in"] == bodies["out"]
    assert len(bodies["in"]) == 1
    # Indistinguishable: the medians within 30% (+2 ms), and a request of one kind as likely
    # to be the slower as the other (the share of pairs, 0.5 when equal, within 0.25-0.75).
    m_in, m_out = median(times["in"]), median(times["out"])
    assert abs(m_in - m_out) <= 0.3 * min(m_in, m_out) + 0.002, (m_in, m_out)
    slower = sum(x > y for x in times["in"] for y in times["out"]) / len(inside) ** 2
    assert 0.25 <= slower <= 0.75, slower
    # Only the numbers in the base received a code, after the answers.
    tally = flows.send_codes(clock.now())
    assert tally["sent"] == len(inside)
    assert tally["absent"] >= len(outside)


def test_a_wrong_code_is_refused_the_same_way_and_attempts_run_out(
    app_client: ScanningClient,
    base_numbers: list[str],
    secrets_of_base: dict[str, set[str]],
) -> None:
    inside = base_numbers[0]
    [outside] = outsiders(base_numbers, secrets_of_base["numbers"], 1)
    asked = {n: ask(app_client, n)["challenge"] for n in (inside, outside)}
    flows.send_codes(clock.now())
    code = CODE.search(inbox()[-1])
    assert code is not None
    wrong = f"{(int(code[1]) + 1) % 10**6:06d}"
    answers = {
        n: app_client.post("/v1/rights/codes/verify", json={"challenge": c, "code": wrong})
        for n, c in asked.items()
    }
    assert {r.status_code for r in answers.values()} == {422}
    assert answers[inside].json() == answers[outside].json()
    for _ in range(4):
        app_client.post("/v1/rights/codes/verify", json={"challenge": asked[inside], "code": wrong})
    late = app_client.post(
        "/v1/rights/codes/verify", json={"challenge": asked[inside], "code": code[1]}
    )
    assert late.status_code == 422
    assert late.json()["attempts_left"] == 0


def test_codes_are_rate_limited_per_number_and_per_address(
    app_client: ScanningClient, base_numbers: list[str], settings: Callable[..., Settings]
) -> None:
    for _ in range(3):
        ask(app_client, base_numbers[1])
    refused = app_client.post("/v1/rights/codes", json={"number": base_numbers[1]})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 3601
    assert base_numbers[1] not in refused.text
    assert base_numbers[1][3:] not in refused.text
    settings(rights_per_address_hourly=4)  # three asked above
    ask(app_client, base_numbers[2])
    assert app_client.post("/v1/rights/codes", json={"number": base_numbers[3]}).status_code == 429
    bad = app_client.post("/v1/rights/codes", json={"number": "not a number"})
    assert bad.status_code == 422
    assert "mobile" in bad.json()["detail"]


def test_staff_answer_a_rectification_within_the_month(
    app_client: ScanningClient, org_keys: dict[str, str], base_numbers: list[str]
) -> None:
    access = prove(app_client, base_numbers[4])
    made = app_client.post(
        "/v1/rights/requests",
        json={"kind": "rectification", "message": "Je suis cadre, pas employé."},
        headers=access,
    )
    assert made.status_code == 201, made.text
    assert app_client.get("/v1/rights/requests", headers=auth(org_keys["acme"])).status_code == 403
    queue = app_client.get("/v1/rights/requests", headers=auth(org_keys["am"])).json()
    [mine] = [r for r in queue if r["id"] == made.json()["id"]]
    assert mine["status"] == "open"
    assert mine["days_left"] in (29, 30)
    assert not mine["overdue"]
    with unit_of_work() as session:
        assert service.remind(session, clock.now()) == []
        assert service.remind(session, clock.now() + timedelta(days=25)) == [mine["id"]]
    done = app_client.post(
        f"/v1/rights/requests/{mine['id']}/answer",
        json={"answer": "Corrigé dans la prochaine version de la base."},
        headers=auth(org_keys["am"]),
    )
    assert done.status_code == 200
    assert done.json()["status"] == "closed"
    again = app_client.post(
        f"/v1/rights/requests/{mine['id']}/answer",
        json={"answer": "x"},
        headers=auth(org_keys["am"]),
    )
    assert again.status_code == 422
    with unit_of_work() as session:
        actions = [a.action for a in RequestRepository(session).actions(mine["id"])]
    assert actions == ["received", "reminded", "answered"]


def test_refresh_drops_the_erased_and_the_inactive_and_keeps_the_opt_out(
    app_client: ScanningClient, base_numbers: list[str], home: object
) -> None:
    root = own_base(get_settings().home)
    access = prove(app_client, base_numbers[5])
    assert app_client.post("/v1/rights/erasure", headers=access).status_code == 200
    with unit_of_work() as session:
        [mac] = ErasureRepository(session).pending()
    before = snapshot.current(root)
    today = clock.today_paris()
    after = refresh_with_purge(root, 0.001, today, _noop)

    changes = after.manifest["changes"]
    assert changes["erased"] == 1
    assert changes["retention_expired"] > 0
    gone = changes["removed"] + changes["erased"] + changes["retention_expired"]
    assert after.manifest["rows"] == before.manifest["rows"] + changes["added"] - gone
    kept = pl.read_parquet(after.attributes)
    cutoff = today.replace(year=today.year - 3)
    assert kept.filter(pl.col("last_interaction") < cutoff).height == 0
    macs = set(pq.read_table(after.contacts, columns=["phone_hmac"]).column(0).to_pylist())
    assert mac not in macs
    # Their consent proof stays, without the number, for the limitation period.
    proofs = pl.read_parquet(after.path / PROOFS)
    assert proofs.filter(pl.col("why") == "erased").height == 1
    assert changes["proofs_archived"] == proofs.height >= changes["removed"] + 1
    assert changes["proofs_purged"] == 0
    assert len(macs) == kept.height
    with unit_of_work() as session:
        assert SuppressionRepository(session).contains(mac)  # a later import stays out
        assert ErasureRepository(session).pending() == set()
    record = app_client.get("/v1/rights/record", headers=access).json()
    assert record["in_base"] is False
    assert record["erasure"] == "done"
    # The version before stays for the hosts still on it; pruned to the current one, the
    # erased person's row is in no version of the base.
    assert mac in set(pq.read_table(before.contacts, columns=["phone_hmac"]).column(0).to_pylist())
    assert snapshot.prune(root, 1) == [before.version]
    assert [p.name for p in root.glob("v[0-9]*")] == [after.version]
    # No code is sent to a number the base no longer holds.
    ask(app_client, base_numbers[5])
    before_codes = len(inbox())
    assert flows.send_codes(clock.now()) == {"absent": 1}
    assert len(inbox()) == before_codes


@pytest.mark.parametrize("path", ["/v1/rights/objection", "/v1/rights/erasure"])
def test_acting_needs_a_verified_code(app_client: ScanningClient, path: str) -> None:
    assert app_client.post(path).status_code == 401


def macs_of(snap: snapshot.Snapshot, ids: list[int]) -> dict[int, bytes]:
    table = pq.read_table(snap.contacts, columns=["prospect_id", "phone_hmac"]).to_pylist()
    return {r["prospect_id"]: bytes(r["phone_hmac"]) for r in table if r["prospect_id"] in ids}


def eligible_of(criteria: dict[str, list[str]]) -> np.ndarray:
    """The prospect ids an order on these criteria may reach today."""
    seg = runtime.current()
    with unit_of_work() as session:
        today = seg.refresh_eligibility(session, clock.now())
    return seg.engine.matching_ids(Criteria.model_validate(criteria), today)


def received(order_id: str) -> list[tuple[int, bytes]]:
    """(prospect id, number HMAC) of every message of the order the carrier simulator took."""
    log = get_settings().home / "simulator" / "submitted.log"
    refs = {int(x) for x in log.read_text().split()} if log.exists() else set()
    with unit_of_work() as session:
        rows = session.execute(
            select(Recipient.prospect_id, Recipient.phone_hmac).where(
                Recipient.order_id == order_id, Recipient.id.in_(refs)
            )
        )
        return [(int(p), bytes(h)) for p, h in rows]


def test_no_message_after_erasure_or_objection_and_a_base_refresh(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    home: object,
    settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two people of a segment, one erased and one objecting through the API, then `rental
    base refresh`: an order on their segment, sent to the carrier simulator, does not reach them."""
    monkeypatch.setitem(current_app.conf, "task_always_eager", True)
    root = own_base(get_settings().home)
    before = snapshot.current(root)
    segment = {"departments": ["23"]}
    eligible = eligible_of(segment)
    people = people_of(before, "23").filter(
        pl.col("prospect_id").is_in(pl.Series(eligible).implode())
    )
    (eraser, eraser_no), (objector, objector_no) = people.head(2).iter_rows()
    macs = macs_of(before, [eraser, objector])
    asked = {"/v1/rights/erasure": eraser_no, "/v1/rights/objection": objector_no}
    for path, number in asked.items():
        assert app_client.post(path, headers=prove(app_client, number)).status_code == 200

    done = CliRunner().invoke(cli.app, ["base", "refresh", "--churn", "0"])
    assert done.exit_code == 0, done.output
    after = snapshot.current(root)
    assert after.version != before.version
    assert after.manifest["changes"]["erased"] == 1
    assert set(macs_of(after, [eraser, objector])) == {objector}  # the objector stays
    still = eligible_of(segment)

    quote = create_quote(app_client, org_keys["acme"], segment)
    # No more than the eligible: a shown count above them by over 10% puts the order on hold.
    order, now = started_order(app_client, org_keys, segment, min(quote["shown_count"], len(still)))
    settings(now=now.isoformat())
    with unit_of_work() as session:
        batches = [b.number for b in LedgerRepository(session).batches(order["id"])]
    for number in batches:
        send_batch(order["id"], number)  # the task, run in this process
    sent = received(order["id"])
    # The order took as many as the quote allows, all from the segment's eligible people...
    assert 0 < len(sent) <= min(quote["shown_count"], len(still))
    assert {p for p, _ in sent} <= set(still.tolist())
    # ... which no longer holds the two (the segment matched them before), so the carrier got
    # nothing for their numbers, and the draw did not even pick them.
    assert not {eraser, objector} & set(still.tolist())
    assert not {h for _, h in sent} & set(macs.values())
    with unit_of_work() as session:
        drawn = session.scalars(
            select(Recipient.phone_hmac).where(Recipient.order_id == order["id"])
        )
        assert not {bytes(h) for h in drawn} & set(macs.values())


def test_old_code_rows_are_deleted_by_the_hourly_tick(
    app_client: ScanningClient, base_numbers: list[str], settings: Callable[..., Settings]
) -> None:
    old = ask(app_client, base_numbers[7])
    flows.send_codes(clock.now())
    code = CODE.search(inbox()[-1])
    assert code is not None
    later = clock.now() + timedelta(days=get_settings().rights.challenge_days, minutes=1)
    settings(now=later.isoformat())
    ask(app_client, base_numbers[8])  # asked now: kept
    tasks.remind()
    with unit_of_work() as session:
        left = session.scalars(select(Challenge.created_at)).all()
    [kept] = left  # only the one asked after the clock moved
    assert kept >= later
    gone = app_client.post(
        "/v1/rights/codes/verify", json={"challenge": old["challenge"], "code": code[1]}
    )
    assert gone.status_code == 422


class KilledAfterHandover:
    """The simulated carrier, in a worker that dies (kill -9) once the code is handed over
    and before anything after it runs."""

    def __init__(self) -> None:
        settings = get_settings()
        self.inner = carriers.current(settings.carriers, settings.home)
        self.name = self.inner.name

    def submit(self, messages: list[Outgoing]) -> tuple[list[Submitted], Feedback]:
        self.inner.submit(messages)
        raise SystemExit("killed")


def test_a_worker_killed_after_handing_a_code_over_sends_no_second_one(
    app_client: ScanningClient, base_numbers: list[str]
) -> None:
    asked = ask(app_client, base_numbers[9])
    before = len(inbox())
    with pytest.raises(SystemExit):
        flows.send_codes(clock.now(), carrier=KilledAfterHandover())
    assert flows.send_codes(clock.now()) == {}  # the next tick: nothing left to send
    assert len(inbox()) == before + 1
    code = CODE.search(inbox()[-1])
    assert code is not None
    ok = app_client.post(
        "/v1/rights/codes/verify", json={"challenge": asked["challenge"], "code": code[1]}
    )
    assert ok.status_code == 200, ok.text  # the one code sent works


def test_a_code_the_carrier_did_not_take_is_sent_at_the_next_tick(
    app_client: ScanningClient, base_numbers: list[str], settings: Callable[..., Settings]
) -> None:
    ask(app_client, base_numbers[10])
    before = len(inbox())
    settings(simulator_down_until=(clock.now() + timedelta(minutes=5)).isoformat())
    assert flows.send_codes(clock.now()) == {}
    assert len(inbox()) == before
    settings(simulator_down_until=None)
    assert flows.send_codes(clock.now()) == {"sent": 1}
    assert len(inbox()) == before + 1
