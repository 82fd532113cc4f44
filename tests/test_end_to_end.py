"""The service end to end, as a newcomer runs it: `rental up` on a fresh home, then
`rental demo` (a complete rental through the public HTTP API, with a real worker and
scheduler), and the privacy proof: every API response a client can get, every report in every
format (the PDF's text included), every invoice, every log line holds no phone number of the
base (E.164 or national, spaced or not) and no prospect id."""

from __future__ import annotations

import base64
import json
import re
import secrets
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from pypdf import PdfReader

from datasets import snapshot
from datasets.vault import decrypt_number
from tests.service import RENTAL, free_port, fresh_home, start_up

DIGITS = re.compile(r"\+?\d[\d .]{7,}\d")


def secrets_of(home: Path) -> tuple[set[str], set[str]]:
    """Every number (E.164, national, spaced) and every prospect id of the home's base."""
    key = base64.b64decode((home / "secrets" / "vault.key").read_bytes().strip())
    table = pq.read_table(
        snapshot.current(home / "base").contacts, columns=["prospect_id", "phone_enc"]
    )
    numbers: set[str] = set()
    ids = table.column("prospect_id").to_pylist()
    for pid, blob in zip(ids, table.column("phone_enc").to_pylist(), strict=True):
        e164 = decrypt_number(key, blob, pid)
        numbers.add(e164)
        numbers.add(e164.lstrip("+"))
        national = "0" + e164[3:] if e164.startswith("+33") else "0" + e164[4:]
        numbers.add(national)
    return numbers, {str(i) for i in ids}


def leaks(text: str, numbers: set[str], ids: set[str]) -> list[str]:
    """Runs of digits, spaces and dots; each contiguous run of their groups is tried, so a
    number written right after another count (a quantity, then a spaced national number) is
    still found. Prospect ids are 15 to 19 digits long."""
    found = []
    for token in DIGITS.findall(text):
        groups = re.split(r"[ .]", token)
        for i in range(len(groups)):
            for j in range(i + 1, len(groups) + 1):
                plain = "".join(groups[i:j])
                if plain in numbers or plain.lstrip("+") in numbers or plain in ids:
                    found.append("a number or id of the base")
    return found


def test_the_scanner_finds_numbers_and_ids_wherever_they_hide(base_numbers: list[str]) -> None:
    e164 = next(n for n in base_numbers if n.startswith("+33"))
    national = "0" + e164[3:]
    spaced = " ".join(national[i : i + 2] for i in range(0, 10, 2))
    pid = str(10**18 + secrets.randbelow(9 * 10**18))  # shaped like a prospect id
    numbers, ids = {e164, e164.lstrip("+"), national}, {pid}
    assert leaks(f"ref 12 {spaced} end", numbers, ids)
    assert leaks(f"total 3 {national}", numbers, ids)
    assert leaks(f'"id": {pid}', numbers, ids)
    assert leaks(f"{e164[:3]} {e164[3]} {spaced[3:]}", numbers, ids)
    assert not leaks("2 000 messages, 324.00 EUR, order 2026-000001", numbers, ids)


def pdf_text(data: bytes, tmp: Path) -> str:
    path = tmp / "doc.pdf"
    path.write_bytes(data)
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


@pytest.mark.slow
def test_a_demo_rental_end_to_end_leaks_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = fresh_home(home, 20000, 5, tick_seconds="1")
    port = free_port()
    service, started = start_up(env, port)
    try:
        assert "rental demo" in started, started
        demo = subprocess.run(
            [*RENTAL, "demo", "--quantity", "600"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert demo.returncode == 0, demo.stderr
        keys = json.loads((home / "demo-keys.json").read_text())
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}/v1",
            headers={"Authorization": f"Bearer {keys['client']}"},
        ) as api:
            texts: dict[str, str] = {"demo output": demo.stdout + demo.stderr, "up": started}
            # Everything the client can reach through the API.
            orders = api.get("/orders").json()
            texts["GET /orders"] = json.dumps(orders)
            for order in orders["items"]:
                oid = order["id"]
                texts[f"GET /orders/{oid}"] = api.get(f"/orders/{oid}").text
                texts["GET /quotes"] = api.get(f"/quotes/{order['quote_id']}").text
                for fmt in ("json", "csv", "html"):
                    r = api.get(f"/orders/{oid}/report", params={"format": fmt})
                    assert r.status_code == 200
                    texts[f"report {fmt}"] = r.text
                r = api.get(f"/orders/{oid}/report", params={"format": "pdf"})
                texts["report pdf"] = pdf_text(r.content, tmp_path)
            invoices = api.get("/invoices").json()
            texts["GET /invoices"] = json.dumps(invoices)
            for inv in invoices["items"]:
                texts[f"invoice {inv['number']}"] = api.get(f"/invoices/{inv['id']}").text
                pdf = api.get(f"/invoices/{inv['id']}", params={"format": "pdf"}).content
                texts[f"invoice {inv['number']} pdf"] = pdf_text(pdf, tmp_path)
            texts["GET /criteria"] = api.get("/criteria").text
    finally:
        service.send_signal(signal.SIGINT)
        rest, _ = service.communicate(timeout=60)
    # What the demo wrote to disk, and every log line of the API, the worker, the scheduler.
    written = sorted((home / "reports").iterdir())
    assert {p.suffix for p in written} >= {".json", ".csv", ".html", ".pdf"}
    assert any(p.name.startswith("balance-") or p.name.startswith("credit") for p in written)
    for path in written:
        data = path.read_bytes()
        texts[f"file {path.name}"] = (
            pdf_text(data, tmp_path) if path.suffix == ".pdf" else data.decode()
        )
    for log in sorted((home / "logs").glob("*.log")):
        texts[f"log {log.name}"] = log.read_text(errors="replace")
    assert "delivered" in texts["report json"]
    assert "<svg" in texts["report html"]
    numbers, ids = secrets_of(home)
    found: dict[str, Any] = {}
    for where, text in texts.items():
        hits = leaks(text, numbers, ids)
        if hits:
            found[where] = len(hits)
    assert found == {}
    assert sum(len(t) for t in texts.values()) > 10_000  # the scan read real documents
