"""The marketer's pages after ordering: the order as the API shows it (status, waves,
invoices, report), the choices a hold leaves (through the API's own services), the
documents behind the session, the lists; another organisation's order is a 404 page."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from sqlalchemy import update

from kit import clock
from kit.db import unit_of_work
from kit.settings import get_settings
from sales.accounts.models import Role
from sales.invoices.models import Invoice
from tests.conftest import ScanningClient, auth
from tests.factories import (
    create_order,
    create_quote,
    deposit_of,
    invoices_of,
    pay_deposit,
    started_order,
)
from tests.web.conftest import add_user, csrf_of, sign_in
from web.security import API_POLICY
from web.staff.words import INVOICE_STATUS, ORDER_STATUS, WAVE_STATUS
from web.templating import euros, number

Browser = Callable[..., ScanningClient]
ORDERS = "/app/commandes"


@pytest.fixture
def marketer(visitor: Browser) -> ScanningClient:
    """A client of Acme, signed in."""
    add_user("marketeuse@acme.test")
    return sign_in(visitor(), "marketeuse@acme.test")  # type: ignore[return-value]


@pytest.fixture
def rival(visitor: Browser) -> ScanningClient:
    """A client of Globex, signed in."""
    add_user("marketeur@globex.test", "Globex")
    return sign_in(visitor(), "marketeur@globex.test")  # type: ignore[return-value]


def api_order(client: ScanningClient, key: str, order_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/orders/{order_id}", headers=auth(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


def text_of(page: str) -> str:
    return unescape(re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", page)))


def cells(page: str, testid: str) -> list[str]:
    """The texts of the elements of the page with this `data-testid`."""
    found = re.findall(rf'data-testid="{testid}"[^>]*>(.*?)</t[dh]>', page, re.S)
    return [text_of(f).strip() for f in found]


def post(client: ScanningClient, order_id: str, action: str, **typed: str) -> Any:
    token = csrf_of(client.get(f"{ORDERS}/{order_id}").text)
    return client.post(f"{ORDERS}/{order_id}/{action}", data={"csrf_token": token, **typed})


def test_the_order_page_shows_what_the_api_shows(
    app_client: ScanningClient, org_keys: dict[str, str], marketer: ScanningClient
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme)
    assert pay_deposit(app_client, acme, am, order["id"]).status_code == 201
    api = api_order(app_client, acme, order["id"])

    page = marketer.get(f"{ORDERS}/{order['id']}")
    assert page.status_code == 200
    status = re.search(r'data-testid="order-status">([^<]+)<', page.text)
    assert status
    assert status.group(1) == ORDER_STATUS[api["status"]] == "Planifiée"
    words = text_of(page.text)
    assert number(api["quantity"]) + " contacts" in words
    assert euros(api["total"]["amount_incl_vat_cents"]) in words
    assert euros(api["deposit"]["amount_incl_vat_cents"]) in words
    assert api["waves"]
    assert cells(page.text, "wave-status") == [WAVE_STATUS[w["status"]] for w in api["waves"]]
    for wave in api["waves"]:
        shown = number(wave["recipients"]) if wave["recipients"] is not None else "masqué"
        assert shown in words
    money = invoices_of(app_client, acme, order["id"])
    assert cells(page.text, "invoice-amount") == [euros(i["amount_incl_vat_cents"]) for i in money]
    assert cells(page.text, "invoice-status") == [INVOICE_STATUS[i["status"]] for i in money]
    for event in ("Commande passée", "Facture d'acompte émise", "Paiement enregistré"):
        assert event in words
    assert "exact" not in words.lower()  # the broker's exact counts are not a client's

    pdf = marketer.get(f"/app/documents/factures/{money[0]['id']}.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_another_organisations_order_and_documents_are_404_pages(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    marketer: ScanningClient,
    rival: ScanningClient,
) -> None:
    acme = org_keys["acme"]
    order = create_order(app_client, acme)
    deposit = deposit_of(app_client, acme, order["id"])
    for url in (
        f"{ORDERS}/{order['id']}",
        f"/app/documents/factures/{deposit['id']}.pdf",
        f"/app/documents/commandes/{order['id']}/rapport.pdf",
        f"{ORDERS}/00000000-0000-4000-8000-000000000000",
    ):
        r = rival.get(url)
        assert r.status_code == 404, url
        assert "introuvable" in r.text
        assert "<html" in r.text  # a page, not JSON
    token = csrf_of(rival.get(ORDERS).text)
    r = rival.post(f"{ORDERS}/{order['id']}/annuler", data={"csrf_token": token})
    assert r.status_code == 404
    assert api_order(app_client, acme, order["id"])["status"] == "awaiting_deposit"
    assert order["id"][:8] not in rival.get(ORDERS).text
    assert deposit["number"] not in rival.get("/app/factures").text
    assert marketer.get(f"{ORDERS}/{order['id']}").status_code == 200


def test_accepting_the_reduced_volume_or_cancelling_a_hold_as_through_the_api(
    app_client: ScanningClient, org_keys: dict[str, str], marketer: ScanningClient
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    quote = create_quote(app_client, acme, {"departments": ["04", "05"]})
    shown = quote["shown_count"]
    first = create_order(app_client, acme, quote, quantity=shown // 2)
    pay_deposit(app_client, acme, am, first["id"])
    # The same people cannot be reserved twice in the same weeks: the next ones fall short.
    second = create_order(app_client, acme, quote, quantity=shown)
    pay_deposit(app_client, acme, am, second["id"])
    held = api_order(app_client, acme, second["id"])
    assert held["status"] == "on_hold"
    offered = held["offered_quantity"]
    assert offered

    page = marketer.get(f"{ORDERS}/{second['id']}")
    shown_offer = re.search(r'data-testid="offered">([^<]+)<', page.text)
    assert shown_offer
    assert shown_offer.group(1) == f"{number(offered)} contacts"
    assert 'data-testid="accept-volume-submit"' in page.text
    r = post(marketer, second["id"], "accepter-volume")
    assert r.status_code == 303
    assert r.headers["location"] == f"{ORDERS}/{second['id']}?fait=volume"
    assert "Volume réduit accepté" in marketer.get(r.headers["location"]).text
    accepted = api_order(app_client, acme, second["id"])
    assert accepted["status"] == "scheduled"
    assert accepted["quantity"] == offered
    assert accepted["total"]["amount_incl_vat_cents"] < second["total"]["amount_incl_vat_cents"]
    assert "volume_accepted" in [e["action"] for e in accepted["events"]]
    again = post(marketer, second["id"], "accepter-volume")
    assert again.status_code == 409  # the service's refusal, in French, on the page
    assert "Impossible" in text_of(again.text)

    third = create_order(app_client, acme, quote, quantity=shown)
    pay_deposit(app_client, acme, am, third["id"])
    assert api_order(app_client, acme, third["id"])["offered_quantity"] is None
    page = marketer.get(f"{ORDERS}/{third['id']}")
    assert 'data-testid="accept-volume-submit"' not in page.text
    assert "Aucun volume ne peut être proposé" in text_of(page.text)
    r = post(marketer, third["id"], "annuler", reason="Campagne reportée")
    assert r.headers["location"] == f"{ORDERS}/{third['id']}?fait=annulee"
    cancelled = api_order(app_client, acme, third["id"])
    assert cancelled["status"] == "cancelled"
    notes = [i for i in invoices_of(app_client, acme, third["id"]) if i["kind"] == "credit_note"]
    assert [n["status"] for n in notes] == ["refund_due"]  # the deposit refunded, as the API


def test_cancelling_before_and_after_the_deposit(
    app_client: ScanningClient, org_keys: dict[str, str], marketer: ScanningClient
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    unpaid, paid = create_order(app_client, acme), create_order(app_client, acme)
    assert pay_deposit(app_client, acme, am, paid["id"]).status_code == 201
    r = post(marketer, unpaid["id"], "annuler")
    assert r.headers["location"].endswith("?fait=annulee")
    assert api_order(app_client, acme, unpaid["id"])["status"] == "cancelled"
    r = post(marketer, paid["id"], "annuler", reason="Campagne reportée")
    assert r.headers["location"].endswith("?fait=annulation-demandee")
    asked = api_order(app_client, acme, paid["id"])
    assert asked["status"] == "scheduled"
    assert asked["cancellation_requested"] is True  # for an account manager, as the API does
    page = marketer.get(r.headers["location"])
    assert "Vous avez demandé l'annulation" in text_of(page.text)
    assert 'data-testid="cancel-submit"' not in page.text


def test_forms_without_the_session_token_are_refused(
    app_client: ScanningClient, org_keys: dict[str, str], marketer: ScanningClient
) -> None:
    acme = org_keys["acme"]
    order = create_order(app_client, acme)
    for data in ({}, {"csrf_token": "forged"}):
        for action in ("annuler", "accepter-volume"):
            r = marketer.post(f"{ORDERS}/{order['id']}/{action}", data=data)
            assert r.status_code == 403
            assert "Formulaire refusé" in r.text
    assert api_order(app_client, acme, order["id"])["status"] == "awaiting_deposit"


def test_the_lists_filter(
    app_client: ScanningClient, org_keys: dict[str, str], marketer: ScanningClient
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    waiting, paid = create_order(app_client, acme), create_order(app_client, acme)
    assert pay_deposit(app_client, acme, am, paid["id"]).status_code == 201
    every = marketer.get(ORDERS).text
    assert waiting["id"][:8] in every
    assert paid["id"][:8] in every
    due = marketer.get(ORDERS, params={"etat": "awaiting_deposit"}).text
    assert waiting["id"][:8] in due
    assert paid["id"][:8] not in due
    scheduled = marketer.get(ORDERS, params={"etat": "scheduled"}).text
    assert paid["id"][:8] in scheduled
    assert waiting["id"][:8] not in scheduled
    assert 'data-testid="no-orders"' in marketer.get(ORDERS, params={"etat": "sent"}).text

    unpaid_invoice = deposit_of(app_client, acme, waiting["id"])
    paid_invoice = deposit_of(app_client, acme, paid["id"])
    to_pay = marketer.get("/app/factures", params={"etat": "a-payer"}).text
    assert unpaid_invoice["number"] in to_pay
    assert paid_invoice["number"] not in to_pay
    settled = marketer.get("/app/factures", params={"etat": "payees"}).text
    assert paid_invoice["number"] in settled
    assert unpaid_invoice["number"] not in settled
    assert unpaid_invoice["number"] not in marketer.get("/app/factures?etat=en-retard").text
    with unit_of_work() as session:
        session.execute(
            update(Invoice)
            .where(Invoice.id == unpaid_invoice["id"])
            .values(due_date=clock.today_paris() - timedelta(days=20))
        )
    late = text_of(marketer.get("/app/factures?etat=en-retard").text)
    assert unpaid_invoice["number"] in late
    assert paid_invoice["number"] not in late
    penalty = deposit_of(app_client, acme, waiting["id"])["penalty"]
    assert f"retard 20 j · pénalités {euros(penalty['total_cents'])}" in late  # the API's

    quotes = marketer.get("/app/devis").text
    assert quotes.count('data-testid="quote-row"') >= 1
    assert "Mes devis" in quotes


def test_the_report_while_sending_in_every_format(
    app_client: ScanningClient, org_keys: dict[str, str], marketer: ScanningClient
) -> None:
    acme = org_keys["acme"]
    order, _ = started_order(app_client, org_keys, {"departments": ["51"]}, 100)
    page = marketer.get(f"{ORDERS}/{order['id']}")
    assert ORDER_STATUS["dispatching"] in text_of(page.text)
    assert 'data-testid="progress"' in page.text
    api = app_client.get(f"/v1/orders/{order['id']}/report", headers=auth(acme)).json()
    base = f"/app/documents/commandes/{order['id']}/rapport"
    view = marketer.get(f"{base}.html")
    assert view.status_code == 200
    assert view.headers["content-security-policy"] == API_POLICY  # its inline style, no script
    as_json = marketer.get(f"{base}.json").json()
    assert as_json["volumes"] == api["volumes"]
    assert as_json["order_id"] == order["id"]
    assert marketer.get(f"{base}.csv").headers["content-type"].startswith("text/csv")
    pdf = marketer.get(f"{base}.pdf")
    assert pdf.content.startswith(b"%PDF")
    assert marketer.get(f"{base}.xml").status_code == 404
    unstarted = create_order(app_client, acme)
    r = marketer.get(f"/app/documents/commandes/{unstarted['id']}/rapport.pdf")
    assert r.status_code == 409
    assert "Rapport pas encore disponible" in r.text


def test_account_managers_are_sent_to_their_own_pages(
    app_client: ScanningClient, org_keys: dict[str, str], visitor: Browser
) -> None:
    order = create_order(app_client, org_keys["acme"])
    add_user("gestion@courtier.test", get_settings().broker_organisation, Role.account_manager)
    manager = sign_in(visitor(), "gestion@courtier.test")
    r = manager.get(f"{ORDERS}/{order['id']}")
    assert r.status_code == 303
    assert r.headers["location"] == f"/app/gestion/commandes/{order['id']}"
    for url in (ORDERS, "/app/factures", "/app/devis"):
        assert manager.get(url).headers["location"] == "/app/gestion"
    token = csrf_of(manager.get("/app/gestion").text)
    r = manager.post(f"{ORDERS}/{order['id']}/annuler", data={"csrf_token": token})
    assert r.status_code == 403
    assert api_order(app_client, org_keys["acme"], order["id"])["status"] == "awaiting_deposit"
