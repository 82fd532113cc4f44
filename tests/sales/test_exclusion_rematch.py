"""A hashed exclusion file after a base refresh: matched again by the worker for the new
snapshot, and never used with the old snapshot's match meanwhile (the people the refresh
brought would be counted, drawn and sent to)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest
from sqlalchemy import select

from datasets import snapshot
from datasets.refresh import refresh_snapshot
from dispatch import flows
from dispatch.models import Recipient
from kit import clock
from kit.db import unit_of_work
from kit.settings import get_settings
from sales.exclusions import tasks
from sales.exclusions.service import salted_sha256
from segmentation import runtime
from segmentation.criteria import Criteria
from segmentation.exceptions import ExclusionFileNotReady
from tests.conftest import ScanningClient, auth
from tests.exclusions import numbers_of, people_of, upload
from tests.factories import at_send_time, own_base, scheduled_order


@dataclass(frozen=True)
class Refresh:
    second: snapshot.Snapshot
    newcomers: np.ndarray  # prospect ids the second snapshot brings, all in the file
    known: np.ndarray  # prospect ids of both snapshots in the file
    file_id: str
    numbers: list[str]  # the file's numbers, before they were hashed


def _hashed_upload(client: ScanningClient, key: str, numbers: list[str]) -> str:
    """The numbers hashed as the organisation's customer hashes them, uploaded."""
    salt = client.get("/v1/exclusion-files/salt", headers=auth(key)).json()["salt"]
    lines = [salted_sha256(salt, n.encode()).hex() for n in numbers]
    r = upload(client, key, lines, form="sha256")
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _ids(snap: snapshot.Snapshot) -> np.ndarray:
    return pl.read_parquet(snap.attributes, columns=["prospect_id"])["prospect_id"].to_numpy()


@pytest.fixture
def refresh(app_client: ScanningClient, org_keys: dict[str, str]) -> Refresh:
    """A hashed file matched with the first snapshot, holding people of the next one too.
    The next snapshot is written first (its newcomers' numbers go into the customer's file),
    then the first is made current again while the file is uploaded and matched."""
    root = own_base(get_settings().home)
    first = snapshot.current(root)
    second = refresh_snapshot(root, 0.001, clock.today_paris())
    snapshot.set_current(root, first.version)
    newcomers = np.setdiff1d(_ids(second), _ids(first))
    assert len(newcomers) > 100
    known = people_of(first, "35").head(150)
    numbers = known["e164"].to_list() + numbers_of(second, newcomers.tolist())
    file_id = _hashed_upload(app_client, org_keys["acme"], numbers)
    assert tasks.match_pending() == 1
    return Refresh(second, newcomers, known["prospect_id"].to_numpy(), file_id, numbers)


def test_counts_and_draws_wait_for_the_match_of_the_new_base(
    app_client: ScanningClient, org_keys: dict[str, str], refresh: Refresh
) -> None:
    key = auth(org_keys["acme"])
    criteria = {"exclusion_files": [refresh.file_id]}
    assert app_client.post("/v1/quotes", json=criteria, headers=key).status_code == 201

    snapshot.set_current(refresh.second.root, refresh.second.version)  # `rental base refresh`
    got = app_client.get(f"/v1/exclusion-files/{refresh.file_id}", headers=key).json()
    assert got["ready"] is False
    r = app_client.post("/v1/quotes", json=criteria, headers=key)
    assert r.status_code == 409
    assert r.json()["error"] == "exclusion_file_not_ready"
    seg, parsed = runtime.current(), Criteria.model_validate(criteria)
    assert seg.version == refresh.second.version
    with unit_of_work() as session, pytest.raises(ExclusionFileNotReady):
        seg.sample(session, parsed, 100, "an-order", clock.now())

    assert tasks.match_pending() == 1  # the beat's round in the worker
    assert tasks.match_pending() == 0  # matched with this snapshot: nothing more to do
    assert app_client.get(f"/v1/exclusion-files/{refresh.file_id}", headers=key).json()["ready"]
    r = app_client.post("/v1/quotes", json=criteria, headers=key)
    assert r.status_code == 201, r.text
    day = clock.today_paris()
    eligible_newcomers = np.intersect1d(seg.engine.matching_ids(Criteria(), day), refresh.newcomers)
    assert len(eligible_newcomers) > 50
    kept = seg.engine.matching_ids(parsed, day)
    assert not np.isin(kept, eligible_newcomers).any()
    assert not np.isin(kept, refresh.known).any()
    with unit_of_work() as session:
        drawn = seg.sample(session, parsed, 20_000, "an-order", clock.now())
    assert len(drawn) == 20_000
    assert not np.isin(drawn, refresh.newcomers).any()


def test_a_send_after_a_refresh_waits_for_the_match(
    app_client: ScanningClient, org_keys: dict[str, str], refresh: Refresh
) -> None:
    """The order paid on the first snapshot is due after the refresh: its start (re-validation
    and top-up from the new base) is refused and rolled back until the file is matched again,
    then it goes out without the newcomers of the file."""
    order = scheduled_order(app_client, org_keys, {"exclusion_files": [refresh.file_id]}, 20_000)
    snapshot.set_current(refresh.second.root, refresh.second.version)
    now = at_send_time(order)
    with pytest.raises(ExclusionFileNotReady), unit_of_work() as session:
        flows.start(session, order["id"], runtime.current(), now)
    r = app_client.get(f"/v1/orders/{order['id']}", headers=auth(org_keys["acme"]))
    assert r.json()["status"] == "scheduled"  # nothing happened: the next tick tries again

    assert tasks.match_pending() == 1
    with unit_of_work() as session:
        assert flows.start(session, order["id"], runtime.current(), now)
    with unit_of_work() as session:
        recipients = session.scalars(
            select(Recipient.prospect_id).where(Recipient.order_id == order["id"])
        ).all()
    assert len(recipients) >= 18_000
    assert not np.isin(np.array(recipients), refresh.newcomers).any()


def test_every_organisations_files_are_matched_in_one_round(
    app_client: ScanningClient, org_keys: dict[str, str], refresh: Refresh
) -> None:
    """Two organisations (two salts) with hashed files when the base is refreshed: the
    worker's next round matches both, each with its own salt."""
    theirs = _hashed_upload(app_client, org_keys["globex"], refresh.numbers[-200:])
    snapshot.set_current(refresh.second.root, refresh.second.version)
    assert tasks.match_pending() == 2
    seg, day = runtime.current(), clock.today_paris()
    eligible = np.intersect1d(seg.engine.matching_ids(Criteria(), day), refresh.newcomers)
    for org, file_id in (("acme", refresh.file_id), ("globex", theirs)):
        criteria = {"exclusion_files": [file_id]}
        r = app_client.post("/v1/quotes", json=criteria, headers=auth(org_keys[org]))
        assert r.status_code == 201, r.text
        kept = seg.engine.matching_ids(Criteria.model_validate(criteria), day)
        assert not np.isin(kept, eligible).any()
