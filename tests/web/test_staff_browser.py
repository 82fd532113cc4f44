"""The account managers' pages in a real Chromium: an account manager signs in, lands on the
work queue, records a deposit, approves a message, opens the order and the audit, on a laptop
and on a phone, with no script refused by the page's policy. Screenshots go to the test's
temporary folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from kit.settings import get_settings
from sales.accounts.models import Role
from sales.quotes import tasks
from tests.conftest import ScanningClient, auth
from tests.factories import create_order, deposit_of, pay_deposit
from tests.web.conftest import LAPTOP, OLD_MEN, PASSWORD, PHONE, add_user, find_probe


def _orders(app_client: ScanningClient, keys: dict[str, str]) -> dict[str, Any]:
    """An order awaiting its deposit (Acme), and one of Globex paid, its message to review."""
    am = keys["am"]
    orgs = app_client.get("/v1/organisations", headers=auth(am)).json()
    globex = next(o["id"] for o in orgs if o["name"] == "Globex")
    r = app_client.patch(
        f"/v1/organisations/{globex}", json={"content_review": "manual"}, headers=auth(am)
    )
    assert r.status_code == 200
    review = create_order(app_client, keys["globex"], sender="GLOBEX", quantity=150)
    assert pay_deposit(app_client, keys["globex"], am, review["id"]).status_code == 201
    unpaid = create_order(app_client, keys["acme"])
    padded, _ = find_probe(app_client, am)
    small = padded["departments"][0]
    for criteria in (padded, {**padded, "exclude": {"departments": [small], **OLD_MEN}}):
        assert app_client.post("/v1/quotes", json=criteria, headers=auth(keys["acme"])).is_success
    tasks.audit()
    return {"unpaid": unpaid, "review": review}


def test_an_account_manager_runs_the_queue_in_a_browser(
    site: str,
    page: Page,
    tmp_path: Path,
    app_client: ScanningClient,
    org_keys: dict[str, str],
) -> None:
    orders = _orders(app_client, org_keys)
    unpaid = orders["unpaid"]
    due = deposit_of(app_client, org_keys["acme"], unpaid["id"])["amount_incl_vat_cents"]
    add_user("gestion@courtier.test", get_settings().broker_organisation, Role.account_manager)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto(site + "/")
    page.get_by_label("Adresse e-mail").fill("gestion@courtier.test")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(site + "/app/gestion")
    page.screenshot(path=tmp_path / "queue.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=tmp_path / "queue-phone.png", full_page=True)
    page.set_viewport_size(LAPTOP)

    card = page.locator(f"#acomptes-{unpaid['id']}")
    card.get_by_label("Référence du virement").fill("VIR-NAVIGATEUR-1")
    expect(card.get_by_label("Montant reçu (€ TTC)")).to_have_value(f"{due // 100},{due % 100:02d}")
    card.get_by_test_id("pay-submit").click()
    expect(page.get_by_test_id("done")).to_contain_text("Paiement enregistré")
    expect(page.locator(f"#acomptes-{unpaid['id']}")).to_have_count(0)

    review = page.locator(f"#contenus-{orders['review']['id']}")
    review.get_by_test_id("approve-submit").click()
    expect(page.get_by_test_id("done")).to_contain_text("Contenu approuvé")
    page.get_by_role("link", name=re.compile("Voir la commande")).click()
    expect(page.get_by_test_id("order-status")).to_have_text("Planifiée")
    page.screenshot(path=tmp_path / "order.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=tmp_path / "order-phone.png", full_page=True)

    page.set_viewport_size(LAPTOP)
    page.get_by_role("link", name="Audit des devis").click()
    expect(page.get_by_test_id("flagged-quote").first).to_be_visible()
    page.screenshot(path=tmp_path / "audit.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=tmp_path / "audit-phone.png", full_page=True)
    assert refused == []
    assert api_status(app_client, org_keys["am"], unpaid["id"]) == "scheduled"


def api_status(client: ScanningClient, key: str, order_id: str) -> str:
    return str(client.get(f"/v1/orders/{order_id}", headers=auth(key)).json()["status"])
