"""Who may post receipts and replies: the configured carrier and carriers an operator gave a
secret to; anyone else is not found, and nothing they send writes to the disk. The SMPP
account's credentials are checked against SMPP 3.4's lengths when the settings load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from datasets import snapshot
from kit import keys
from kit.settings import Settings, SmppSettings, get_settings
from tests.conftest import ScanningClient

RECEIPT = [{"message_id": "nobody-1", "status": "delivered"}]
REPLY = [{"text": "STOP"}]


def rental(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("rental")
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, **env),
        timeout=120,
        check=False,
    )


def files_under_home() -> set[Path]:
    return {p for p in get_settings().home.rglob("*") if p.is_file()}


@pytest.mark.parametrize("kind", ["receipts", "replies"])
def test_an_unknown_carrier_is_not_found_and_nothing_is_written(
    app_client: ScanningClient, kind: str
) -> None:
    body = RECEIPT if kind == "receipts" else REPLY
    before = files_under_home()
    for headers in ({}, {"X-Carrier-Secret": "guess"}):
        r = app_client.post(f"/v1/carriers/zqmarker-{kind}/{kind}", json=body, headers=headers)
        assert r.status_code == 404
        assert r.json()["error"] == "carrier_not_found"
        assert "zqmarker" not in r.text  # the name typed is not repeated
    assert files_under_home() == before  # no secret created for a name anyone can type


def test_a_known_carrier_needs_its_secret(app_client: ScanningClient) -> None:
    secret = keys.issue_carrier_secret("qxmarker-gw")  # what `rental carriers secret` does
    url = "/v1/carriers/qxmarker-gw/receipts"
    missing = app_client.post(url, json=RECEIPT)
    wrong = app_client.post(url, json=RECEIPT, headers={"X-Carrier-Secret": secret[:-1] + "!"})
    # A header is bytes: one that is not ASCII is a wrong secret too, not a server error.
    latin = app_client.post(
        url, json=RECEIPT, headers={b"X-Carrier-Secret": "clé".encode("latin-1")}
    )
    for r in (missing, wrong, latin):
        assert r.status_code == 401
        assert r.json()["error"] == "carrier_secret_required"
        assert "qxmarker" not in r.text
    right = app_client.post(url, json=RECEIPT, headers={"X-Carrier-Secret": secret})
    assert right.status_code == 200
    assert right.json() == {"received": 1, "applied": 0}


def test_the_configured_carrier_without_a_secret_is_refused_not_created(
    app_client: ScanningClient, settings: Callable[..., Settings]
) -> None:
    """The configured carrier is known before it has a secret (the service creates it at
    start): refused until then, and the request creates nothing."""
    settings(carrier="ymarker-gw")
    r = app_client.post("/v1/carriers/ymarker-gw/receipts", json=RECEIPT)
    assert r.status_code == 401
    assert not (get_settings().secrets_dir / "carrier-ymarker-gw.key").exists()


def test_a_configured_secret_wins_over_files(
    app_client: ScanningClient, settings: Callable[..., Settings]
) -> None:
    injected = "s" * 40
    settings(carrier_secrets={"vxmarker-gw": injected})
    url = "/v1/carriers/vxmarker-gw/replies"
    assert app_client.post(url, json=REPLY).status_code == 401  # known: it has a secret
    r = app_client.post(url, json=REPLY, headers={"X-Carrier-Secret": injected})
    assert r.status_code == 200
    assert not (get_settings().secrets_dir / "carrier-vxmarker-gw.key").exists()


def test_the_operator_issues_a_secret_and_the_carrier_may_post(
    app_client: ScanningClient, base: snapshot.Snapshot
) -> None:
    first = rental("carriers", "secret", "wxmarker-gw")
    assert first.returncode == 0, first.stderr
    issued = json.loads(first.stdout)
    assert issued["carrier"] == "wxmarker-gw"
    again = json.loads(rental("carriers", "secret", "wxmarker-gw").stdout)
    assert again["secret"] == issued["secret"]  # printed again, not replaced
    r = app_client.post(
        "/v1/carriers/wxmarker-gw/receipts",
        json=RECEIPT,
        headers={"X-Carrier-Secret": issued["secret"]},
    )
    assert r.status_code == 200
    before = files_under_home()
    bad = rental("carriers", "secret", "../escape")
    assert bad.returncode == 1
    assert "a-z, 0-9" in bad.stderr
    assert files_under_home() == before


@pytest.mark.parametrize(
    ("setting", "limit"),
    [("smpp_password", 8), ("smpp_system_id", 15), ("smpp_system_type", 12)],
)
def test_smpp_credentials_longer_than_smpp_allows_are_refused(setting: str, limit: int) -> None:
    accepted = SmppSettings.model_validate({setting: "a" * limit})
    assert accepted.model_dump(by_alias=True)[setting] == "a" * limit  # at the limit
    with pytest.raises(ValidationError) as refused:
        SmppSettings.model_validate({setting: "b" * (limit + 1)})
    text = str(refused.value)
    assert f"RENTAL_{setting.upper()}" in text
    assert f"{limit} characters" in text
    assert "b" * (limit + 1) not in text  # never the value


def test_a_worker_with_an_over_long_smpp_password_does_not_start(
    base: snapshot.Snapshot,
) -> None:
    password = "Ab3xQ9zLong"  # 11 characters: smpplib would send "Ab3xQ9zL"
    r = rental("worker", RENTAL_CARRIER="smpp", RENTAL_SMPP_PASSWORD=password)
    assert r.returncode == 1
    assert "RENTAL_SMPP_PASSWORD is longer than the 8 characters SMPP 3.4 allows" in r.stderr
    assert password not in r.stdout + r.stderr
    assert "Traceback" not in r.stderr
