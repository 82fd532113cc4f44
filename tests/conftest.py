"""Shared fixtures: one isolated RENTAL_HOME with a real generated base, a real SQLite database
and the real application. The environment is set before any project module reads settings."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HOME = Path(tempfile.mkdtemp(prefix="rental-tests-"))
os.environ["RENTAL_HOME"] = str(HOME)
os.environ.setdefault("RENTAL_DAILY_QUOTE_BUDGET", "100000")
if os.environ.get("RENTAL_TEST_DATABASE_URL"):
    os.environ["RENTAL_DATABASE_URL"] = os.environ["RENTAL_TEST_DATABASE_URL"]

from datetime import date  # noqa: E402

import polars as pl  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from datasets import snapshot  # noqa: E402
from datasets.build import generate_snapshot  # noqa: E402
from datasets.vault import decrypt_number  # noqa: E402
from kit import keys  # noqa: E402
from kit.db import unit_of_work  # noqa: E402
from kit.settings import get_settings  # noqa: E402
from rental.migrations import upgrade  # noqa: E402
from sales.accounts import service as accounts  # noqa: E402
from sales.accounts.models import Role  # noqa: E402

ROWS = 200_000
SEED = 7
AS_OF = date(2026, 11, 2)


@pytest.fixture(scope="session")
def base() -> snapshot.Snapshot:
    root = get_settings().base_dir
    if (root / "CURRENT").exists():
        return snapshot.current(root)
    return generate_snapshot(root, ROWS, SEED, AS_OF)


@pytest.fixture(scope="session")
def attributes(base: snapshot.Snapshot) -> pl.DataFrame:
    return pl.read_parquet(base.attributes)


@pytest.fixture(scope="session")
def secrets_of_base(base: snapshot.Snapshot) -> dict[str, set[str]]:
    """Every phone number of the base (E.164 and national forms) and every prospect id: what
    must never reach a customer. Only tests decrypt the vault like this."""
    table = pq.read_table(base.contacts, columns=["prospect_id", "phone_enc"])
    key = keys.vault_key()
    ids = table.column("prospect_id").to_pylist()
    numbers: set[str] = set()
    for pid, blob in zip(ids, table.column("phone_enc").to_pylist(), strict=True):
        e164 = decrypt_number(key, blob, pid)
        numbers.add(e164)
        cc_len = 2 if e164.startswith("+33") else 3
        national = "0" + e164[1 + cc_len :]
        numbers.add(national)
        numbers.add(" ".join([national[:2]] + [national[i : i + 2] for i in range(2, 10, 2)]))
    return {"numbers": numbers, "ids": {str(i) for i in ids}}


@pytest.fixture(scope="session")
def base_numbers(base: snapshot.Snapshot) -> list[str]:
    """A few E.164 numbers of the generated base, for tests that need real-looking numbers
    (never written in the code)."""
    table = pq.read_table(base.contacts, columns=["prospect_id", "phone_enc"]).slice(0, 50)
    key = keys.vault_key()
    return [
        decrypt_number(key, blob, pid)
        for pid, blob in zip(
            table.column("prospect_id").to_pylist(),
            table.column("phone_enc").to_pylist(),
            strict=True,
        )
    ]


DIGITS = re.compile(r"\+?\d[\d ]{7,}\d")


class Canary:
    """Scans text for any number or prospect id of the base."""

    def __init__(self, secrets: dict[str, set[str]]) -> None:
        self.numbers = secrets["numbers"]
        self.ids = secrets["ids"]
        self.scanned = 0

    def hits(self, text: str) -> list[str]:
        self.scanned += 1
        found = []
        for token in DIGITS.findall(text):
            t = token.strip()
            candidates = {t, t.replace(" ", "")}
            if candidates & self.numbers or candidates & self.ids:
                found.append("<a number or id of the base>")
        return found


@pytest.fixture(scope="session")
def canary(secrets_of_base: dict[str, set[str]]) -> Canary:
    return Canary(secrets_of_base)


class ScanningClient(TestClient):
    """A real HTTP client of the app that fails the test on any response leaking the base."""

    canary: Canary

    def request(self, *args: Any, **kwargs: Any) -> Any:
        response = super().request(*args, **kwargs)
        leaks = self.canary.hits(response.text)
        assert not leaks, f"response to {args[:2]} leaks {leaks}"
        return response


@pytest.fixture(scope="session")
def app_client(base: snapshot.Snapshot, canary: Canary) -> Iterator[ScanningClient]:
    from rental.app import create_app

    client = ScanningClient(create_app())
    client.canary = canary
    with client:
        yield client


@pytest.fixture(scope="session")
def org_keys(base: snapshot.Snapshot) -> dict[str, str]:
    upgrade()
    with unit_of_work() as session:
        for org in ("Acme", "Globex"):
            accounts.add_organisation(session, org)
        out = {
            "acme": accounts.add_key(session, "Acme", Role.client).key,
            "globex": accounts.add_key(session, "Globex", Role.client).key,
        }
        accounts.operator(session)
        out["am"] = accounts.add_key(
            session, get_settings().broker_organisation, Role.account_manager
        ).key
    return out


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
