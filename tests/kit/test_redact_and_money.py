from __future__ import annotations

import io
import logging
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from uvicorn.logging import AccessFormatter

from kit import money, redact
from tests.conftest import auth
from tests.service import free_port


def _forms(e164: str) -> list[str]:
    """A number of the base as people write it: E.164, national, spaced, dotted."""
    national = "0" + e164[3:] if e164.startswith("+33") else "0" + e164[4:]
    pairs = [national[i : i + 2] for i in range(0, 10, 2)]
    return [e164, national, " ".join(pairs), ".".join(pairs), f"{e164[:4]} {e164[4:]}"]


def test_phone_like_text_is_masked(secrets_of_base: dict[str, set[str]]) -> None:
    metro = next(n for n in sorted(secrets_of_base["numbers"]) if n.startswith("+33"))
    overseas = next(n for n in sorted(secrets_of_base["numbers"]) if n.startswith("+262"))
    for text in _forms(metro) + _forms(overseas):
        assert redact.redact(f"unknown value {text!r}") == "unknown value '<redacted>'", text


def test_ordinary_numbers_survive() -> None:
    assert redact.redact("age 25 to 45, 1234 rows, department 974") == (
        "age 25 to 45, 1234 rows, department 974"
    )


def test_log_records_are_masked(
    caplog: pytest.LogCaptureFixture, secrets_of_base: dict[str, set[str]]
) -> None:
    number = next(n for n in sorted(secrets_of_base["numbers"]) if n.startswith("+33"))
    logger = logging.getLogger("rental.test")
    caplog.handler.addFilter(redact.RedactingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("opt-out from %s", number)
    assert number not in caplog.text
    assert "<redacted>" in caplog.text


def test_money_rounds_half_up_once() -> None:
    assert money.to_cents(Decimal("0.005")) == 1
    assert money.to_cents(Decimal("0.0049")) == 0
    assert money.vat_cents(12345, Decimal("0.20")) == 2469
    assert money.format_eur(123456) == "1 234.56 EUR"


def test_every_access_line_of_the_real_server_is_kept_and_masked(
    org_keys: dict[str, str], base_numbers: list[str], tmp_path: Path
) -> None:
    """The API as `rental serve` runs it (uvicorn, its own access log formatter): URLs with
    long digit runs are logged, one line per request, with the digits masked."""
    port = free_port()
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with stdout.open("w") as o, stderr.open("w") as e:  # files: a chatty server never blocks
        proc = subprocess.Popen(
            [sys.executable, "-m", "rental", "serve", "--port", str(port)], stdout=o, stderr=e
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(url + "/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.3)
        nationals = ["0" + n[3:] for n in base_numbers if n.startswith("+33")][:10]
        paths = [f"/v1/orders/{n}" for n in nationals]
        paths += [f"/v1/quotes/{n}?breakdowns={n}" for n in nationals]
        paths += ["/v1/orders?limit=5", "/v1/orders/12345678901234567890"]
        for path in paths:
            r = httpx.get(url + path, headers=auth(org_keys["acme"]), timeout=10)
            assert r.status_code in (200, 404, 422), r.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out, err = stdout.read_text(), stderr.read_text()
    lines = [line for line in out.splitlines() if "HTTP/1.1" in line and "/health" not in line]
    assert "Logging error" not in err
    assert len(lines) == len(paths), out
    assert all(n not in out for n in nationals)
    assert "12345678901234567890" not in out
    assert sum("<redacted>" in line for line in lines) == len(paths) - 1


def test_the_filter_keeps_uvicorns_access_record_whole(base_numbers: list[str]) -> None:
    """A handler that can only be filtered (not given our formatter) still formats uvicorn's
    access records: the arguments keep their number and types, the text ones are masked."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
    handler.addFilter(redact.RedactingFilter())
    logger = logging.getLogger("tests.access")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        national = "0" + base_numbers[0][3:]
        logger.warning(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/v1/orders/{national}", "1.1", 404
        )
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == (
        '127.0.0.1:5000 - "GET /v1/orders/<redacted> HTTP/1.1" 404 Not Found\n'
    )
