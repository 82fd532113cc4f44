"""An exclusion file's members are not sent to: checked at the carrier simulator, which logs
every message it receives (by ledger reference), and in the send report, which says how many
the files left out the way it says any count."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow.parquet as pq
import pytest
from celery import current_app
from sqlalchemy import select

from datasets import snapshot
from dispatch.models import Recipient
from dispatch.repository import LedgerRepository
from dispatch.tasks import send_batch
from kit import clock
from kit.db import unit_of_work
from kit.settings import Settings, get_settings
from segmentation import privacy, runtime
from segmentation.criteria import Criteria
from tests.conftest import ScanningClient, auth
from tests.exclusions import people_of, upload
from tests.factories import started_order

SEGMENT = {"departments": ["23"]}


def test_an_exclusion_file_removes_its_members_from_a_send(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    base: snapshot.Snapshot,
    settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The simulator's receipts, and any next batch, run here rather than through a broker.
    monkeypatch.setitem(current_app.conf, "task_always_eager", True)
    people = people_of(base, "23")
    members = people.head(170)
    r = upload(app_client, org_keys["acme"], members["e164"].to_list(), name="our customers")
    assert r.status_code == 201, r.text
    criteria = {**SEGMENT, "exclusion_files": [r.json()["id"]]}
    seg = runtime.current()
    with unit_of_work() as session:  # eligibility as the quote sees it (opt-outs, pressure)
        today = seg.refresh_eligibility(session, clock.now())
    eligible = seg.engine.matching_ids(Criteria.model_validate(SEGMENT), today)
    gone = np.intersect1d(eligible, members["prospect_id"].to_numpy())
    # The file holds eligible people of the segment (an order could reach them without it),
    # and leaves enough others for an order of 100.
    assert len(gone) >= 50, (len(gone), len(eligible))
    assert len(eligible) - len(gone) >= 100  # enough others for the order
    order, now = started_order(app_client, org_keys, criteria, 100)
    settings(now=now.isoformat())
    with unit_of_work() as session:
        batches = [b.number for b in LedgerRepository(session).batches(order["id"])]
    for number in batches:
        send_batch(order["id"], number)  # the task, run in this process
    log = get_settings().home / "simulator" / "submitted.log"
    refs = {int(x) for x in log.read_text().split()}
    with unit_of_work() as session:
        sent = list(
            session.execute(
                select(Recipient.prospect_id, Recipient.phone_hmac).where(
                    Recipient.order_id == order["id"], Recipient.id.in_(refs)
                )
            )
        )
    assert len(sent) == 100  # the order went out
    hmacs = pq.read_table(base.contacts, columns=["prospect_id", "phone_hmac"]).to_pylist()
    members_hmacs = {
        bytes(c["phone_hmac"]) for c in hmacs if c["prospect_id"] in set(gone.tolist())
    }
    assert not {bytes(h) for _, h in sent} & members_hmacs
    assert not set(gone.tolist()) & {p for p, _ in sent}
    # The report says how many the file left out, as a quote would show it.
    report = app_client.get(f"/v1/orders/{order['id']}/report", headers=auth(org_keys["acme"]))
    assert report.status_code == 200, report.text
    shown = report.json()["excluded_by_files"]
    with unit_of_work() as session:
        today = seg.refresh_eligibility(session, clock.now())
    now_eligible = seg.engine.matching_ids(Criteria.model_validate(SEGMENT), today)
    still = np.intersect1d(now_eligible, gone)
    k = get_settings().privacy.min_segment_size
    rate = seg.engine.person_sample.rate
    assert shown is not None
    assert shown == privacy.shown_count(
        len(still), seg.engine.person_sample.sampled(still), k, rate
    )
