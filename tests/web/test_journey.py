"""The whole journey in a real Chromium, on a real service: `rental up` (the API, a Celery
worker and the scheduler) on a home of its own with a small base, its clock started on a
weekday morning (RENTAL_NOW) inside the legal send windows. A marketer builds a segment on the
map and the form, composes a message that turns UCS-2, picks the earliest send time and
orders; an account manager, in a second browser, records the deposit and approves the
content; the worker sends; the marketer follows the order to its report and PDF. Every main
page is checked with axe-core (no serious or critical violation) and screenshot into the
test's temporary folder. axe is served to the page by Playwright at a same-origin address,
which the pages' CSP admits; only the report, whose policy forbids every script, is checked
in a context that bypasses the CSP."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader

from tests.service import free_port, fresh_home, own_database, start_up
from tests.web.conftest import GRAVE, GSM_TEXT, LAPTOP, UCS2_TEXT, accessible

# A Tuesday morning in Paris, no public holiday: the windows are open for hours.
MORNING = "2027-03-09T10:00:00+01:00"
ROWS, SEED = 20_000, 14
QUANTITY = 120
SENT = ("sent", "reported", "closed")
SIGN_IN = re.compile(r"^\s+(\S+@\S+)\s+password (\S+)$", re.MULTILINE)


@dataclass
class Service:
    """`rental up` running: its address, the demo people's passwords, the manager's API key."""

    url: str
    passwords: dict[str, str]
    manager_key: str

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + "/v1",
            headers={"Authorization": f"Bearer {self.manager_key}"},
            timeout=30,
        )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    home = tmp_path / "home"
    env = own_database(fresh_home(home, ROWS, SEED, now=MORNING, tick_seconds="1"), "journey")
    port = free_port()
    proc, printed = start_up(env, port)
    try:
        assert "rental demo" in printed, printed
        keys = json.loads((home / "demo-keys.json").read_text())
        yield Service(keys["url"], dict(SIGN_IN.findall(printed)), keys["manager"])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": LAPTOP}


def accessible_scriptless(
    browser: Browser, page: Page, root: str, name: str, refused: tuple[str, ...]
) -> None:
    """axe-core on a page whose policy admits no script at all (the report): the same page
    opened in a second context of the same session that bypasses the CSP, for the check only."""
    context = browser.new_context(bypass_csp=True, storage_state=page.context.storage_state())
    try:
        other = context.new_page()
        other.goto(page.url)
        accessible(other, root, name, refused)
    finally:
        context.close()


def shoot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=folder / f"{name}.png")
    page.screenshot(path=folder / f"{name}-full.png", full_page=True)


def sign_in(page: Page, service: Service, email: str) -> None:
    page.goto(service.url + "/")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(service.passwords[email])
    page.get_by_test_id("login-submit").click()


def number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def build_segment(page: Page, service: Service, shots: Path) -> None:
    """The marketer signs in and narrows the segment on the map and the form."""
    root = service.url
    page.goto(root + "/")
    accessible(page, root, "sign-in")
    shoot(page, shots, "sign-in")
    sign_in(page, service, "marketing@demo.test")
    expect(page).to_have_url(root + "/app/segment")
    count = page.get_by_test_id("live-count")
    expect(count).to_have_text(re.compile(r"^\d"))  # the page comes first, its count after
    whole = number(count.inner_text())
    page.locator('#segment-map [data-code="33"]').click()  # Gironde
    expect(page.locator('#departments input[value="33"]')).to_be_checked()
    expect(count).not_to_have_text(re.compile(rf"^{count.inner_text()}$"))
    one = count.inner_text()
    assert number(one) < whole
    page.get_by_label("Femme").check()
    expect(count).not_to_have_text(one)
    assert QUANTITY <= number(count.inner_text()) < number(one)
    accessible(page, root, "builder")
    shoot(page, shots, "builder")
    page.locator("#segment-map").scroll_into_view_if_needed()
    page.screenshot(path=shots / "builder-map.png")


def order(page: Page, service: Service, shots: Path) -> str:
    """From the builder's count to the order placed, sent as soon as can be; the order's id."""
    root = service.url
    page.get_by_test_id("order-start").click()
    expect(page).to_have_url(re.compile(r"/app/commander\?devis="))
    page.wait_for_load_state()  # the composer's script listens before we type
    page.get_by_label("Quantité de SMS à envoyer").fill(str(QUANTITY))
    segments = page.get_by_test_id("segments")
    page.get_by_test_id("message-input").fill(GSM_TEXT)
    expect(segments).to_have_text("1")
    page.get_by_test_id("message-input").fill(UCS2_TEXT)
    expect(segments).to_have_text("2")  # "ê" turns it UCS-2: 67 characters a part
    page.get_by_label("Nom d'expéditeur").fill("ACME")
    when = page.get_by_label("Date et heure d'envoi")
    earliest = when.get_attribute("min") or ""
    assert earliest.startswith(MORNING[:10]), earliest  # the service's day, not the machine's
    when.fill(earliest)  # the earliest the picker offers: now
    waves = page.locator(".waves")
    expect(waves).to_contain_text("France métropolitaine")
    expect(waves).not_to_contain_text("Pas à l'heure choisie")  # the window is open: at once
    accessible(page, root, "order form")
    shoot(page, shots, "order-form")
    page.get_by_test_id("order-review").click()
    expect(page.get_by_test_id("deposit")).to_contain_text("€")
    shoot(page, shots, "order-summary")
    page.get_by_test_id("order-submit").click()
    link = page.get_by_test_id("order-link")
    expect(link).to_be_visible()
    href = link.get_attribute("href") or ""
    return href.rstrip("/").rsplit("/", 1)[-1]


def run_the_queue(browser: Browser, service: Service, order_id: str, shots: Path) -> None:
    """The account manager, in a browser of their own: deposit, then content."""
    root = service.url
    context = browser.new_context(locale="fr-FR", viewport=LAPTOP)
    page = context.new_page()
    try:
        sign_in(page, service, "gestion@courtier.test")
        expect(page).to_have_url(root + "/app/gestion")
        accessible(page, root, "work queue")
        shoot(page, shots, "work-queue")
        card = page.locator(f"#acomptes-{order_id}")
        card.get_by_label("Référence du virement").fill("VIR-PARCOURS-1")
        card.get_by_test_id("pay-submit").click()
        expect(page.get_by_test_id("done")).to_contain_text("Paiement enregistré")
        page.locator(f"#contenus-{order_id}").get_by_test_id("approve-submit").click()
        expect(page.get_by_test_id("done")).to_contain_text("Contenu approuvé")
        page.get_by_role("link", name="Audit des devis").click()
        expect(page).to_have_url(root + "/app/gestion/audit")
        accessible(page, root, "audit")
        shoot(page, shots, "audit")
    finally:
        context.close()


def sent_by_the_worker(service: Service, order_id: str, seconds: float = 90) -> dict[str, Any]:
    """The order once the worker has sent it (the API, polled as a program would)."""
    deadline = time.monotonic() + seconds
    with service.api() as api:
        while True:
            found: dict[str, Any] = api.get(f"/orders/{order_id}").json()
            if found["status"] in SENT or time.monotonic() > deadline:
                return found
            time.sleep(1)


def test_the_whole_journey_in_a_browser(
    service: Service, page: Page, browser: Browser, tmp_path: Path
) -> None:
    with service.api() as api:
        demo = next(o["id"] for o in api.get("/organisations").json() if o["name"] == "Demo")
        r = api.patch(f"/organisations/{demo}", json={"content_review": "manual"})
        assert r.status_code == 200, r.text
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)

    build_segment(page, service, tmp_path)
    order_id = order(page, service, tmp_path)
    run_the_queue(browser, service, order_id, tmp_path)
    sent = sent_by_the_worker(service, order_id)
    assert sent["status"] in SENT, sent["status"]

    root = service.url
    page.goto(f"{root}/app/commandes/{order_id}")
    expect(page.get_by_test_id("order-status")).to_have_text(
        re.compile("Envoyée|Rapport final|Clôturée")
    )
    accessible(page, root, "order page")
    shoot(page, tmp_path, "order")
    with page.expect_download() as download:
        page.get_by_test_id("report-pdf").click()
    pdf = Path(download.value.path())
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = "\n".join(p.extract_text() or "" for p in PdfReader(pdf).pages)
    assert re.search(rf"Quantity ordered\s*{QUANTITY}\b", text), text[:600]
    assert re.search(rf"Submitted to the carrier \(billed\)\s*{QUANTITY}\b", text), text[:600]
    page.get_by_test_id("report-view").click()
    expect(page.locator("h1").first).to_be_visible()
    accessible_scriptless(browser, page, root, "report", ("moderate", *GRAVE))
    shoot(page, tmp_path, "report")
    assert refused == [], refused
