"""A hashed exclusion file after a base refresh: matched again by the worker for the new
snapshot, and never used with the old snapshot's match meanwhile (the people the refresh
brought would be counted and drawn)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from datasets import snapshot
from datasets.refresh import refresh_snapshot
from kit import clock
from kit.db import unit_of_work
from kit.settings import get_settings
from sales.exclusions import tasks
from sales.exclusions.service import salted_sha256
from segmentation import runtime
from segmentation.criteria import Criteria
from segmentation.exceptions import ExclusionFileNotReady
from tests.conftest import ScanningClient, auth
from tests.exclusions import numbers_of, own_base, people_of, upload


def _ids(snap: snapshot.Snapshot) -> np.ndarray:
    return pl.read_parquet(snap.attributes, columns=["prospect_id"])["prospect_id"].to_numpy()


def test_a_hashed_file_is_matched_again_after_a_refresh(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    root = own_base(get_settings().home)
    first = snapshot.current(root)
    # The next snapshot is written now (its newcomers' numbers go into the customer's file),
    # but the file is uploaded and matched while the first is still the current one.
    second = refresh_snapshot(root, 0.001, clock.today_paris())
    snapshot.set_current(root, first.version)
    newcomers = np.setdiff1d(_ids(second), _ids(first))
    assert len(newcomers) > 100
    known = people_of(first, "35").head(150)
    numbers = known["e164"].to_list() + numbers_of(second, newcomers.tolist())
    key = auth(org_keys["acme"])
    salt = app_client.get("/v1/exclusion-files/salt", headers=key).json()["salt"]
    lines = [salted_sha256(salt, n.encode()).hex() for n in numbers]
    file_id = upload(app_client, org_keys["acme"], lines, form="sha256").json()["id"]
    assert tasks.match_pending() == 1
    criteria = {"exclusion_files": [file_id]}
    assert app_client.post("/v1/quotes", json=criteria, headers=key).status_code == 201

    snapshot.set_current(root, second.version)  # what `rental base refresh` ends with
    got = app_client.get(f"/v1/exclusion-files/{file_id}", headers=key).json()
    assert got["ready"] is False
    r = app_client.post("/v1/quotes", json=criteria, headers=key)
    assert r.status_code == 409
    assert r.json()["error"] == "exclusion_file_not_ready"
    seg, parsed = runtime.current(), Criteria.model_validate(criteria)
    assert seg.version == second.version
    with unit_of_work() as session, pytest.raises(ExclusionFileNotReady):
        seg.sample(session, parsed, 100, "an-order", clock.now())

    assert tasks.match_pending() == 1  # the beat's round in the worker
    assert tasks.match_pending() == 0  # matched with this snapshot: nothing more to do
    assert app_client.get(f"/v1/exclusion-files/{file_id}", headers=key).json()["ready"]
    r = app_client.post("/v1/quotes", json=criteria, headers=key)
    assert r.status_code == 201, r.text
    day = clock.today_paris()
    eligible_newcomers = np.intersect1d(seg.engine.matching_ids(Criteria(), day), newcomers)
    assert len(eligible_newcomers) > 50
    kept = seg.engine.matching_ids(parsed, day)
    assert not np.isin(kept, eligible_newcomers).any()
    assert not np.isin(kept, known["prospect_id"].to_numpy()).any()
    with unit_of_work() as session:
        drawn = seg.sample(session, parsed, 20_000, "an-order", clock.now())
    assert len(drawn) == 20_000
    assert not np.isin(drawn, newcomers).any()
