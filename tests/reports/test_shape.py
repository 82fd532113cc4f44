"""The shape of a report (its waves, which cells are hidden) tells nothing of whether anyone
of the order lives in a place its criteria reach."""

from __future__ import annotations

from typing import Any

import pytest

from kit import clock
from tests.conftest import ScanningClient, auth
from tests.factories import started_order

SOME = {"departments": ["76", "976"]}  # some fifty of 300 in Mayotte
NONE = {"departments": ["76", "976"], "exclude": {"departments": ["976"]}}  # nobody there


def _hidden(doc: dict[str, Any]) -> dict[str, Any]:
    """Which waves and regions are listed, and which of them are hidden (the other
    breakdowns follow who was drawn, not where: they may differ between two draws)."""
    return {
        "waves": [(w["calendar"], w["recipients"] is None) for w in doc["timeline"]["waves"]],
        "region": [(c["value"], c["recipients"] is None) for c in doc["breakdowns"]["region"]],
        "sex": [c["value"] for c in doc["breakdowns"]["sex"]],
        "age_band": [c["value"] for c in doc["breakdowns"]["age_band"]],
    }


def test_a_place_with_nobody_reads_as_one_with_a_few(
    app_client: ScanningClient, org_keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: the Mayotte wave or region cell listed, or the Normandie one shown in full
    beside an empty Mayotte, would tell whether anyone of the order lives in Mayotte."""
    docs = []
    for criteria in (SOME, NONE):
        order, now = started_order(app_client, org_keys, criteria, 300)
        monkeypatch.setattr(clock, "now", lambda now=now: now)
        r = app_client.get(f"/v1/orders/{order['id']}/report", headers=auth(org_keys["acme"]))
        assert r.status_code == 200, r.text
        docs.append(r.json())
    some, none = docs
    assert [w["calendar"] for w in none["timeline"]["waves"]] == ["976", "metro"]
    regions = {c["label"]: c["recipients"] for c in none["breakdowns"]["region"]}
    assert regions["Normandie"] is None  # 300, but shown it would say Mayotte is empty
    assert regions["Mayotte"] is None
    assert _hidden(some) == _hidden(none)
