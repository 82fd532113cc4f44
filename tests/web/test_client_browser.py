"""The marketer's pages after ordering in a real Chromium: the lists from the menu, a held
order's offered volume accepted by a click, the report opened and downloaded as PDF, on a
laptop and on a phone, with nothing refused by the page's policy. Screenshots go to the
test's temporary folder."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.conftest import ScanningClient
from tests.factories import create_order, create_quote, pay_deposit, started_order
from tests.web.conftest import LAPTOP, PASSWORD, PHONE, add_user


def _shoot(page: Page, folder: Path, name: str) -> None:
    page.set_viewport_size(LAPTOP)
    page.screenshot(path=folder / f"{name}.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=folder / f"{name}-phone.png", full_page=True)
    page.set_viewport_size(LAPTOP)


def test_a_marketer_follows_an_order_in_a_browser(
    site: str,
    page: Page,
    tmp_path: Path,
    app_client: ScanningClient,
    org_keys: dict[str, str],
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    quote = create_quote(app_client, acme, {"departments": ["04", "05"]})
    first = create_order(app_client, acme, quote, quantity=quote["shown_count"] // 2)
    pay_deposit(app_client, acme, am, first["id"])
    held = create_order(app_client, acme, quote, quantity=quote["shown_count"])
    pay_deposit(app_client, acme, am, held["id"])  # falls short: on hold, a volume offered
    sending, _ = started_order(app_client, org_keys, {"departments": ["51"]}, 100)
    add_user("marketeuse@acme.test")
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto(site + "/")
    page.get_by_label("Adresse e-mail").fill("marketeuse@acme.test")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()

    page.get_by_role("link", name="Commandes").click()
    expect(page.get_by_test_id("order-row")).to_have_count(3)
    _shoot(page, tmp_path, "orders")
    page.get_by_label("État").select_option("on_hold")
    page.get_by_role("button", name="Filtrer").click()
    expect(page.get_by_test_id("order-row")).to_have_count(1)
    page.get_by_role("link", name=held["id"][:8]).click()
    expect(page.get_by_test_id("order-status")).to_have_text("Suspendue")
    _shoot(page, tmp_path, "order-held")
    page.get_by_test_id("accept-volume-submit").click()
    expect(page.get_by_test_id("done")).to_contain_text("Volume réduit accepté")
    expect(page.get_by_test_id("order-status")).to_have_text("Planifiée")

    page.goto(f"{site}/app/commandes/{sending['id']}")
    expect(page.get_by_test_id("progress")).to_be_visible()
    _shoot(page, tmp_path, "order-sending")
    with page.expect_download() as download:
        page.get_by_test_id("report-pdf").click()
    assert download.value.suggested_filename == f"rapport-{sending['id']}.pdf"
    page.get_by_test_id("report-view").click()
    expect(page.locator("h1").first).to_be_visible()
    page.go_back()

    page.get_by_role("link", name="Factures").click()
    expect(page.get_by_test_id("invoice-row").first).to_be_visible()
    _shoot(page, tmp_path, "invoices")
    page.get_by_role("link", name="Devis").click()
    expect(page.get_by_test_id("quote-row").first).to_be_visible()
    _shoot(page, tmp_path, "quotes")
    assert refused == []
