"""The broker's audit of attack-like quotes (sales/quotes/audit.py): series of pairs of quotes
whose segments differ by a small group T are flagged after they were answered, listed for
account managers with their criteria, and shown as collusion when two organisations share a
pair. The worker's task is called in process, as the beat would have it run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sales.quotes import tasks
from tests.conftest import Canary, ScanningClient, auth

# Small departments of the base (a few hundred prospects each): where a group of old people
# is under the minimum segment size while the department as a whole is shown.
SMALL = ["23", "48", "90", "05", "15", "04", "09", "52", "55", "58", "2A", "32", "46"]
OLD_MEN = {"sex": ["M"], "age": {"min": 75}}


def quote(client: ScanningClient, key: str, criteria: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/quotes", json=criteria, headers=auth(key))
    assert r.status_code == 201, r.text
    return dict(r.json())


def flagged(client: ScanningClient, key: str, **params: Any) -> dict[str, Any]:
    r = client.get("/v1/audit/quotes", params=params, headers=auth(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


@dataclass(frozen=True)
class Target:
    """A department where old men (T) and everyone aged 75+ are fewer than k, and the others
    (department partners for the padded pairs) with it."""

    department: str
    old_men: int
    old: int
    partners: list[str]


@pytest.fixture
def target(app_client: ScanningClient, org_keys: dict[str, str]) -> Target:
    """Found with the account manager's exact counts (staff quotes are never audited)."""

    def exact(criteria: dict[str, Any]) -> int:
        return int(quote(app_client, org_keys["am"], criteria)["exact_count"])

    for d in SMALL:
        total, old_men = exact({"departments": [d]}), exact({"departments": [d], **OLD_MEN})
        old = exact({"departments": [d], "age": {"min": 75}})
        if total >= 250 and 0 < old_men and old < 90:
            return Target(d, old_men, old, [p for p in SMALL if p != d][:4])
    raise AssertionError("no small department with fewer than 90 people aged 75+")


def near_of(listing: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {item["quote_id"]: item["near"] for item in listing["items"]}


def test_padded_pairs_with_exclude_and_age_cut_offs_are_flagged(
    app_client: ScanningClient, org_keys: dict[str, str], target: Target
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    pairs = []
    for partner in target.partners:  # A_i and A_i minus T, with `exclude`
        padded = {"departments": [target.department, partner]}
        without = {**padded, "exclude": {"departments": [target.department], **OLD_MEN}}
        pairs.append((quote(app_client, acme, padded), quote(app_client, acme, without)))
    for youngest in (18, 30, 45):  # an age range stopping short of T = everyone aged 75+
        whole = {"departments": [target.department], "age": {"min": youngest}}
        short = {"departments": [target.department], "age": {"min": youngest, "max": 74}}
        pairs.append((quote(app_client, acme, whole), quote(app_client, acme, short)))
    assert all(a["shown_count"] and b["shown_count"] for a, b in pairs)

    assert flagged(app_client, am)["items"] == []  # nothing is audited on the request path
    assert tasks.audit() >= len(pairs)
    listing = flagged(app_client, am)
    near = near_of(listing)
    for i, (earlier, later) in enumerate(pairs):
        assert later["id"] in near, f"pair {i} not flagged"
        pair = next(n for n in near[later["id"]] if n["quote_id"] == earlier["id"])
        assert pair["difference"] == (target.old_men if i < len(target.partners) else target.old)
        assert pair["another_organisation"] is False
        assert pair["organisation"] == "Acme"
        assert pair["criteria"] == earlier["criteria"]  # canonical, as the quote shows it
    item = next(i for i in listing["items"] if i["quote_id"] == pairs[0][1]["id"])
    assert item["criteria"]["exclude"]["sex"] == ["M"]
    assert item["organisation"] == "Acme"
    times = [i["created_at"] for i in listing["items"]]
    assert times == sorted(times, reverse=True)  # newest first
    (acme_flags,) = listing["organisations"]
    assert acme_flags["organisation"] == "Acme"
    assert acme_flags["flags"] >= len(pairs)
    assert acme_flags["with_other_organisations"] == 0

    assert tasks.audit() == 0  # each quote is audited once
    assert flagged(app_client, am, organisation_id=acme_flags["organisation_id"]) == listing


def test_unrelated_quotes_of_a_similar_size_are_not_flagged(
    app_client: ScanningClient, org_keys: dict[str, str], target: Target
) -> None:
    """Two departments of nearly the same size: compared (their counts are within k), they
    share nobody. Asking the same set again in other words is not flagged either."""
    acme, am = org_keys["acme"], org_keys["am"]
    sizes = {
        d: int(quote(app_client, am, {"departments": [d]})["exact_count"]) for d in target.partners
    }
    first, second = min(
        ((a, b) for a in sizes for b in sizes if a < b),
        key=lambda p: abs(sizes[p[0]] - sizes[p[1]]),
    )
    assert abs(sizes[first] - sizes[second]) < 100, sizes  # so that they are compared
    quote(app_client, acme, {"departments": [first]})
    quote(app_client, acme, {"departments": [second]})
    quote(app_client, acme, {"departments": [second], "age": {"min": 18, "max": 105}})
    tasks.audit()
    listing = flagged(app_client, am)
    assert listing["items"] == []
    assert listing["organisations"] == []


def test_two_organisations_probing_the_same_small_group_show_as_collusion(
    app_client: ScanningClient, org_keys: dict[str, str], target: Target
) -> None:
    padded = {"departments": [target.department, target.partners[0]]}
    without = {**padded, "exclude": {"departments": [target.department], **OLD_MEN}}
    asked = quote(app_client, org_keys["acme"], padded)
    probe = quote(app_client, org_keys["globex"], without)
    tasks.audit()

    listing = flagged(app_client, org_keys["am"])
    (item,) = listing["items"]
    assert (item["quote_id"], item["organisation"]) == (probe["id"], "Globex")
    (near,) = item["near"]
    assert (near["quote_id"], near["organisation"]) == (asked["id"], "Acme")
    assert near["another_organisation"] is True
    assert near["difference"] == target.old_men
    (globex,) = listing["organisations"]
    assert (globex["organisation"], globex["flags"], globex["with_other_organisations"]) == (
        "Globex",
        1,
        1,
    )
    assert flagged(app_client, org_keys["am"], organisation_id=item["organisation_id"]) == listing
    assert (
        flagged(app_client, org_keys["am"], organisation_id=near["organisation_id"])["items"] == []
    )
    since = (datetime.fromisoformat(probe["created_at"]) + timedelta(seconds=1)).isoformat()
    assert flagged(app_client, org_keys["am"], since=since)["items"] == []


def test_clients_cannot_read_the_audit(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    for key in ("acme", "globex"):
        r = app_client.get("/v1/audit/quotes", headers=auth(org_keys[key]))
        assert r.status_code == 403
        assert r.json()["error"] == "role_required"
    assert app_client.get("/v1/audit/quotes").status_code == 401


def test_the_audit_holds_no_phone_number_nor_prospect_id(
    app_client: ScanningClient, org_keys: dict[str, str], target: Target, canary: Canary
) -> None:
    padded = {"departments": [target.department, target.partners[1]]}
    quote(app_client, org_keys["acme"], padded)
    quote(
        app_client,
        org_keys["acme"],
        {**padded, "exclude": {"departments": [target.department], **OLD_MEN}},
    )
    tasks.audit()
    r = app_client.get("/v1/audit/quotes", headers=auth(org_keys["am"]))
    assert r.json()["items"]
    assert canary.hits(r.text) == []
    keys = json.dumps(r.json()).lower()
    assert "prospect" not in keys
    assert "phone" not in keys


def test_since_is_an_iso_instant(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    am = org_keys["am"]
    assert flagged(app_client, am, since="2026-12-01T00:00")["items"] == []  # Paris time
    for far in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "2999-01-01"):
        assert flagged(app_client, am, since=far)["items"] == []  # bounds, not dates acted on
    for bad in ("0.5", "1700000000", "yesterday"):
        r = app_client.get("/v1/audit/quotes", params={"since": bad}, headers=auth(am))
        assert r.status_code == 422, bad


def test_the_cli_lists_what_the_api_lists(
    app_client: ScanningClient, org_keys: dict[str, str], target: Target
) -> None:
    padded = {"departments": [target.department, target.partners[2]]}
    quote(app_client, org_keys["acme"], padded)
    quote(
        app_client,
        org_keys["globex"],
        {**padded, "exclude": {"departments": [target.department], **OLD_MEN}},
    )
    tasks.audit()
    listing = flagged(app_client, org_keys["am"])
    org = str(listing["items"][0]["organisation_id"])
    exe = Path(sys.executable).with_name("rental")
    run = subprocess.run(
        [str(exe), "audit", "quotes", "--organisation", org],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == listing
