"""The whole journey in a real Chromium: a marketer builds a segment on the map and the form,
composes a message and orders; an account manager, in a second browser, records the deposit
and approves the content; the order is sent; the marketer follows it to its report and PDF.
Every main page is checked with axe-core (no serious or critical violation) and screenshot
into the test's temporary folder. axe is served to the page by Playwright at a same-origin
address, which the pages' CSP admits; only the report, whose policy forbids every script, is
checked in a context that bypasses the CSP.

The sending itself is driven in process (tests.factories.send_in_process: the dispatch flows
chunk by chunk, simulated carrier receipts), not by a Celery worker: a real worker and beat
would wait for the order's send time and windows, which a browser test cannot."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from kit import clock
from kit.settings import get_settings
from sales.accounts.models import Role
from tests.conftest import ScanningClient, auth
from tests.factories import at_send_time, send_in_process
from tests.web.conftest import PASSWORD, add_user
from tests.web.test_browser import base_url, browser_type_launch_args, site  # noqa: F401
from tests.web.test_order_form import GSM_TEXT, UCS2_TEXT
from tests.web.test_staff_browser import LAPTOP

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
AXE_URL = "/__axe-core.js"  # served to the page by Playwright, so the CSP's 'self' admits it


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "locale": "fr-FR", "viewport": LAPTOP}


def accessible(page: Page, root: str, name: str) -> None:
    """axe-core on the page as it stands: no serious or critical violation."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `npm ci --ignore-scripts` (make install does)")
    page.route(root + AXE_URL, lambda route: route.fulfill(path=AXE))
    page.add_script_tag(url=root + AXE_URL)
    found = page.evaluate(
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
    )
    grave = [v for v in found if v["impact"] in ("serious", "critical")]
    assert grave == [], f"{name}: {grave}"


def accessible_scriptless(browser: Browser, page: Page, root: str, name: str) -> None:
    """axe-core on a page whose policy admits no script at all (the report): the same page
    opened in a second context of the same session that bypasses the CSP, for the check only."""
    context = browser.new_context(bypass_csp=True, storage_state=page.context.storage_state())
    try:
        other = context.new_page()
        other.goto(page.url)
        accessible(other, root, name)
    finally:
        context.close()


def shoot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=folder / f"{name}.png")
    page.screenshot(path=folder / f"{name}-full.png", full_page=True)


def sign_in(page: Page, root: str, email: str) -> None:
    page.goto(root + "/")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()


def number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def build_and_order(page: Page, root: str, shots: Path) -> str:
    """The marketer's part up to the order placed; the order's id."""
    page.goto(root + "/")
    accessible(page, root, "sign-in")
    shoot(page, shots, "sign-in")
    sign_in(page, root, "marketeuse@acme.test")
    expect(page).to_have_url(root + "/app/segment")
    count = page.get_by_test_id("live-count")
    expect(count).to_have_text(re.compile(r"^\d"))  # the page comes first, its count after
    whole = number(count.inner_text())
    page.locator('#segment-map [data-code="05"]').click()  # Hautes-Alpes: a small one
    expect(page.locator('#departments input[value="05"]')).to_be_checked()
    expect(count).not_to_have_text(re.compile(rf"^{count.inner_text()}$"))
    one = count.inner_text()
    assert number(one) < whole
    page.get_by_label("Femme").check()
    expect(count).not_to_have_text(one)
    assert 100 <= number(count.inner_text()) < number(one)
    accessible(page, root, "builder")
    shoot(page, shots, "builder")
    page.locator("#segment-map").scroll_into_view_if_needed()
    page.screenshot(path=shots / "builder-map.png")

    page.get_by_test_id("order-start").click()
    expect(page).to_have_url(re.compile(r"/app/commander\?devis="))
    page.wait_for_load_state()  # the composer's script listens before we type
    # Below the count: the count is rounded and noised, the base may hold a few less.
    page.get_by_label("Quantité de SMS à envoyer").fill("120")
    segments = page.get_by_test_id("segments")
    page.get_by_test_id("message-input").fill(GSM_TEXT)
    expect(segments).to_have_text("1")
    page.get_by_test_id("message-input").fill(UCS2_TEXT)
    expect(segments).to_have_text("2")  # "ê" turns it UCS-2: 67 characters a part
    page.get_by_label("Nom d'expéditeur").fill("ACME")
    tuesday = clock.now().astimezone(clock.PARIS) + timedelta(days=7)
    tuesday += timedelta(days=(1 - tuesday.weekday()) % 7)
    page.get_by_label("Date et heure d'envoi").fill(f"{tuesday:%Y-%m-%d}T10:00")
    expect(page.locator(".waves")).not_to_contain_text("Choisissez")
    accessible(page, root, "order form")
    shoot(page, shots, "order-form")
    page.get_by_test_id("order-review").click()
    expect(page.get_by_test_id("deposit")).to_contain_text("€")
    page.get_by_test_id("order-submit").click()
    link = page.get_by_test_id("order-link")
    expect(link).to_be_visible()
    href = link.get_attribute("href") or ""
    return href.rstrip("/").rsplit("/", 1)[-1]


def run_the_queue(browser: Browser, root: str, order_id: str, shots: Path) -> None:
    """The account manager, in a browser of their own: deposit, then content."""
    context = browser.new_context(locale="fr-FR", viewport=LAPTOP)
    page = context.new_page()
    try:
        sign_in(page, root, "gestion@courtier.test")
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
        accessible(page, root, "audit")
        shoot(page, shots, "audit")
    finally:
        context.close()


def test_the_whole_journey_in_a_browser(
    site: str,  # noqa: F811
    page: Page,
    browser: Browser,
    tmp_path: Path,
    app_client: ScanningClient,
    org_keys: dict[str, str],
) -> None:
    am = org_keys["am"]
    orgs = app_client.get("/v1/organisations", headers=auth(am)).json()
    acme = next(o["id"] for o in orgs if o["name"] == "Acme")
    r = app_client.patch(
        f"/v1/organisations/{acme}", json={"content_review": "manual"}, headers=auth(am)
    )
    assert r.status_code == 200, r.text
    add_user("marketeuse@acme.test")
    add_user("gestion@courtier.test", get_settings().broker_organisation, Role.account_manager)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)

    order_id = build_and_order(page, site, tmp_path)
    run_the_queue(browser, site, order_id, tmp_path)
    order = app_client.get(f"/v1/orders/{order_id}", headers=auth(am)).json()
    assert order["status"] == "scheduled", order["status"]
    send_in_process(order_id, at_send_time(order))

    page.goto(f"{site}/app/commandes/{order_id}")
    expect(page.get_by_test_id("order-status")).to_have_text("Envoyée")
    accessible(page, site, "order page")
    shoot(page, tmp_path, "order")
    with page.expect_download() as download:
        page.get_by_test_id("report-pdf").click()
    pdf = Path(download.value.path())
    assert pdf.read_bytes().startswith(b"%PDF-")
    page.get_by_test_id("report-view").click()
    expect(page.locator("h1").first).to_be_visible()
    accessible_scriptless(browser, page, site, "report")
    shoot(page, tmp_path, "report")
    assert refused == [], refused
