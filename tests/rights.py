"""A person of the base proving their number to the rights API, as a phone would: the code is
read off the simulated carrier's log of codes."""

from __future__ import annotations

import re

from kit import clock
from kit.settings import get_settings
from subjects import flows
from tests.conftest import ScanningClient

CODE = re.compile(r"\b(\d{6})\b")


def inbox() -> list[str]:
    """The texts of the one-time codes the simulated carrier took, oldest first."""
    path = get_settings().home / "simulator" / "codes.log"
    if not path.exists():
        return []
    return [line.split("\t", 1)[1] for line in path.read_text().splitlines()]


def ask(client: ScanningClient, number: str) -> dict[str, str]:
    response = client.post("/v1/rights/codes", json={"number": number})
    assert response.status_code == 202, response.text
    body: dict[str, str] = response.json()
    return body


def prove(client: ScanningClient, number: str) -> dict[str, str]:
    """Ask a code, let the worker send it, read it off the simulated phone, send it back."""
    asked = ask(client, number)
    before = len(inbox())
    flows.send_codes(clock.now())
    texts = inbox()
    assert len(texts) == before + 1, "no code received by SMS"
    match = CODE.search(texts[-1])
    assert match is not None
    ok = client.post(
        "/v1/rights/codes/verify", json={"challenge": asked["challenge"], "code": match[1]}
    )
    assert ok.status_code == 200, ok.text
    return {"X-Rights-Access": ok.json()["access"]}
