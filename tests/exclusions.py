"""Helpers of the exclusion-file tests: numbers of the base by department (decrypted here, as
only tests and the dispatch worker do), numbers outside it, and uploads."""

from __future__ import annotations

import random
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from datasets import snapshot
from datasets.vault import decrypt_numbers
from kit import keys
from tests.conftest import ScanningClient, auth


def people_of(base: snapshot.Snapshot, department: str) -> pl.DataFrame:
    """prospect_id and E.164 number of everyone of a department in the base."""
    ids = pl.read_parquet(base.attributes, columns=["prospect_id", "department"]).filter(
        pl.col("department") == department
    )["prospect_id"]
    contacts = pl.from_arrow(pq.read_table(base.contacts, columns=["prospect_id", "phone_enc"]))
    assert isinstance(contacts, pl.DataFrame)
    rows = contacts.filter(pl.col("prospect_id").is_in(ids.implode())).sort("prospect_id")
    numbers = decrypt_numbers(
        keys.vault_key(), rows["phone_enc"].to_list(), rows["prospect_id"].to_list()
    )
    return rows.select("prospect_id").with_columns(pl.Series("e164", numbers))


def outsiders(n: int, seed: int) -> list[str]:
    """Valid French mobile numbers made up here (in the 075 range the base does not use)."""
    rng = random.Random(seed)
    return [f"+3375{rng.randrange(10**7):07d}" for _ in range(n)]


def national(e164: str) -> str:
    """An E.164 French number written '0X XX XX XX XX', as a customer's file often does."""
    digits = "0" + e164[3:]
    return " ".join(digits[i : i + 2] for i in range(0, 10, 2))


def upload(
    client: ScanningClient, key: str, lines: list[str], **params: Any
) -> Any:  # the response
    return client.post(
        "/v1/exclusion-files",
        content="\n".join(lines).encode(),
        params=params,
        headers={**auth(key), "Content-Type": "text/plain"},
    )


def numbers_of(snap: snapshot.Snapshot, ids: list[int]) -> list[str]:
    """The E.164 numbers of these prospects of a snapshot, in the order of `ids`."""
    contacts = pl.from_arrow(pq.read_table(snap.contacts, columns=["prospect_id", "phone_enc"]))
    assert isinstance(contacts, pl.DataFrame)
    rows = contacts.filter(pl.col("prospect_id").is_in(ids))
    by_id = dict(
        zip(
            rows["prospect_id"].to_list(),
            decrypt_numbers(
                keys.vault_key(), rows["phone_enc"].to_list(), rows["prospect_id"].to_list()
            ),
            strict=True,
        )
    )
    return [by_id[i] for i in ids]
