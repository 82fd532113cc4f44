"""The account managers' pages: who may open them, their forms (CSRF, the API's own services
and refusals in French), the order as staff see it."""

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
from tests.factories import create_order, create_quote, deposit_of, invoices_of, pay_deposit
from tests.web.conftest import add_user, csrf_of, sign_in
from web.staff.actions import ACTIONS
from web.templating import euros, number

Browser = Callable[..., ScanningClient]
QUEUE = "/app/gestion"


def order_page(order_id: str) -> str:
    return f"{QUEUE}/commandes/{order_id}"


@pytest.fixture
def manager(visitor: Browser) -> ScanningClient:
    """An account manager of the broker, signed in."""
    add_user("gestion@courtier.test", get_settings().broker_organisation, Role.account_manager)
    return sign_in(visitor(), "gestion@courtier.test")  # type: ignore[return-value]


def api_order(client: ScanningClient, key: str, order_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/orders/{order_id}", headers=auth(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


def post_action(
    manager: ScanningClient, order_id: str, action: str, place: str = "acomptes", **typed: str
) -> Any:
    page = manager.get(QUEUE)
    data = {"csrf_token": csrf_of(page.text), "place": place, **typed}
    return manager.post(f"{order_page(order_id)}/{action}", data=data)


def text_of(page: str) -> str:
    """The page's words, tags removed and spaces joined (numbers keep their narrow spaces)."""
    return unescape(re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_account_managers_land_on_their_queue(visitor: Browser) -> None:
    add_user("gestion@courtier.test", get_settings().broker_organisation, Role.account_manager)
    client = visitor()
    page = client.get("/")
    r = client.post(
        "/sign-in",
        data={
            "email": "gestion@courtier.test",
            "password": "Une-phrase-de-passe-assez-longue",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert r.headers["location"] == QUEUE
    assert client.get("/").headers["location"] == QUEUE
    queue = client.get(QUEUE)
    assert queue.status_code == 200
    assert "File de travail" in queue.text
    assert 'href="/app/gestion/audit"' in queue.text  # the staff menu


def test_a_client_gets_a_403_page_on_every_staff_page(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    visitor: Browser,
    marketer: ScanningClient,
) -> None:
    order = create_order(app_client, org_keys["acme"])  # its own organisation's order
    token = csrf_of(marketer.get("/app/segment").text)
    pages = [QUEUE, QUEUE + "/audit", order_page(order["id"])]
    for path in pages:
        r = marketer.get(path)
        assert r.status_code == 403, path
        assert "réservée aux chargés de compte" in r.text
        assert "text/html" in r.headers["content-type"]
    for action in ACTIONS:
        r = marketer.post(
            f"{order_page(order['id'])}/{action}",
            data={"csrf_token": token, "reference": "VIR-1", "amount": "1", "reason": "abc"},
        )
        assert r.status_code == 403, action
    assert api_order(app_client, org_keys["acme"], order["id"])["status"] == "awaiting_deposit"
    assert "Ciblage et comptage" in marketer.get("/app/segment").text
    assert 'href="/app/gestion"' not in marketer.get("/app/segment").text  # no staff menu
    for path in pages:
        r = visitor().get(path)
        assert (r.status_code, r.headers["location"]) == (303, "/")


def test_every_staff_form_refuses_a_missing_or_forged_csrf_token(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    order = create_order(app_client, org_keys["acme"])
    deposit = deposit_of(app_client, org_keys["acme"], order["id"])
    typed = {
        "reference": "VIR-CSRF",
        "amount": str(deposit["amount_incl_vat_cents"] / 100),
        "reason": "a reason long enough",
        "place": "acomptes",
    }
    for action in ACTIONS:
        for token in (None, "forged-token"):
            data = dict(typed, **({"csrf_token": token} if token else {}))
            r = manager.post(f"{order_page(order['id'])}/{action}", data=data)
            assert r.status_code == 403, action
            assert "Formulaire refusé" in r.text
    after = api_order(app_client, org_keys["am"], order["id"])
    assert after["status"] == "awaiting_deposit"
    assert after["deposit_paid"] is False
    assert [e["action"] for e in after["events"]] == ["created", "deposit_invoiced"]


def _money(invoice: dict[str, Any]) -> tuple[Any, ...]:
    return (
        invoice["kind"],
        invoice["status"],
        invoice["paid_cents"],
        invoice["outstanding_cents"],
        invoice["paid_on"],
    )


def test_recording_the_deposit_on_the_page_confirms_the_order_as_the_api_does(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    quote = create_quote(app_client, acme)
    by_page, by_api = create_order(app_client, acme, quote), create_order(app_client, acme, quote)
    queue = manager.get(QUEUE)
    assert f'id="acomptes-{by_page["id"]}"' in queue.text
    due = deposit_of(app_client, acme, by_page["id"])["amount_incl_vat_cents"]
    assert f'value="{due // 100},{due % 100:02d}"' in queue.text  # what is due, ready to send

    r = post_action(
        manager,
        by_page["id"],
        "pay",
        reference="VIR-PAGE-1",
        amount=f"{due // 100},{due % 100:02d}",
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith(QUEUE + "?fait=paiement&")
    assert "Paiement enregistré" in manager.get(r.headers["location"]).text
    assert pay_deposit(app_client, acme, am, by_api["id"], "VIR-API-1").status_code == 201

    paged, api = api_order(app_client, am, by_page["id"]), api_order(app_client, am, by_api["id"])
    assert paged["status"] == api["status"] == "scheduled"  # confirmed, then scheduled
    for key in ("deposit_paid", "reservation", "reserved", "quantity", "content_review"):
        assert paged[key] == api[key], key
    assert [e["action"] for e in paged["events"]] == [e["action"] for e in api["events"]]
    assert [_money(i) for i in invoices_of(app_client, acme, by_page["id"])] == [
        _money(i) for i in invoices_of(app_client, acme, by_api["id"])
    ]
    payment = next(e for e in paged["events"] if e["action"] == "payment_recorded")
    assert payment["details"]["reference"] == "VIR-PAGE-1"
    assert payment["details"]["amount_cents"] == due
    assert f'id="acomptes-{by_page["id"]}"' not in manager.get(QUEUE).text  # done

    again = post_action(
        manager, by_page["id"], "pay", reference="VIR-PAGE-1", amount=str(due / 100)
    )
    assert again.headers["location"].startswith(QUEUE + "?fait=paiement-deja")


def test_a_refused_payment_comes_back_in_french_beside_its_field(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    order = create_order(app_client, org_keys["acme"])
    due = deposit_of(app_client, org_keys["acme"], order["id"])["amount_incl_vat_cents"]
    field = f"acomptes-pay-{order['id']}"

    typed = post_action(manager, order["id"], "pay", reference="VIR 1", amount="trois cents")
    assert typed.status_code == 422
    assert f'href="#{field}-amount"' in typed.text  # the error summary links to each field
    assert f'href="#{field}-reference"' in typed.text
    assert "au plus deux décimales" in typed.text
    assert 'value="trois cents"' in typed.text  # what was typed is kept

    over = post_action(manager, order["id"], "pay", reference="VIR-2", amount=str(due / 100 + 1))
    assert over.status_code == 422  # the service's Overpayment, as the API answers
    words = text_of(over.text)
    assert "Le montant dépasse ce qui reste dû" in words
    assert f"{number(due // 100)},{due % 100:02d}" in words
    assert f'href="#{field}-amount"' in over.text

    tomorrow = (clock.today_paris() + timedelta(days=1)).isoformat()
    later = post_action(
        manager, order["id"], "pay", reference="VIR-3", amount="1", received_on=tomorrow
    )
    assert later.status_code == 422
    assert "jour où la banque a reçu le paiement" in later.text  # the service's refusal
    odd = post_action(
        manager, order["id"], "pay", reference="VIR-4", amount="1", received_on="hier"
    )
    assert odd.status_code == 422
    assert "sous la forme jj/mm/aaaa" in odd.text  # the API's schema's
    assert api_order(app_client, org_keys["am"], order["id"])["deposit_paid"] is False


def _manual_review(app_client: ScanningClient, am: str, name: str) -> None:
    orgs = app_client.get("/v1/organisations", headers=auth(am)).json()
    oid = next(o["id"] for o in orgs if o["name"] == name)
    r = app_client.patch(
        f"/v1/organisations/{oid}", json={"content_review": "manual"}, headers=auth(am)
    )
    assert r.status_code == 200, r.text


def test_content_is_approved_or_rejected_with_a_reason(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    globex, am = org_keys["globex"], org_keys["am"]
    _manual_review(app_client, am, "Globex")
    message = "Promo <b>{{ civilite }}</b> -20% chez nous"
    order = create_order(app_client, globex, sender="GLOBEX", quantity=150, message=message)
    assert pay_deposit(app_client, globex, am, order["id"]).status_code == 201
    queue = manager.get(QUEUE)
    assert f'id="contenus-{order["id"]}"' in queue.text
    assert "Promo &lt;b&gt;{{ civilite }}&lt;/b&gt;" in queue.text  # the message as text

    empty = post_action(manager, order["id"], "reject", place="contenus", reason=" ")
    assert empty.status_code == 422
    assert "Saisissez un motif de 3 à 500 caractères" in empty.text
    r = post_action(
        manager, order["id"], "reject", place="contenus", reason="Mentions légales absentes"
    )
    assert r.status_code == 303
    seen = api_order(app_client, globex, order["id"])
    assert seen["content_review"] == {"status": "rejected", "note": "Mentions légales absentes"}
    assert seen["status"] == "confirmed"

    revised = app_client.patch(
        f"/v1/orders/{order['id']}", json={"message": "-20% jusqu'au 31/12"}, headers=auth(globex)
    )
    assert revised.status_code == 200, revised.text
    r = post_action(manager, order["id"], "approve", place="contenus")
    assert (r.status_code, r.headers["location"].split("&")[0]) == (303, QUEUE + "?fait=approuve")
    seen = api_order(app_client, globex, order["id"])
    assert seen["content_review"]["status"] == "approved"
    assert seen["status"] == "scheduled"
    assert f'id="contenus-{order["id"]}"' not in manager.get(QUEUE).text

    # Rejecting once it is scheduled is the service's refusal, in French, on the order page.
    late = post_action(manager, order["id"], "reject", place="commande", reason="Trop tard ?")
    assert late.status_code == 409
    assert "suspendez-la avant de refuser son contenu" in late.text
    assert 'data-testid="order-status"' in late.text


def test_the_order_page_shows_exact_counts_beside_shown_ones_its_history_and_waves(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme)
    assert pay_deposit(app_client, acme, am, order["id"]).status_code == 201
    staff_view = api_order(app_client, am, order["id"])
    quote = app_client.get(f"/v1/quotes/{order['quote_id']}", headers=auth(am)).json()

    page = manager.get(order_page(order["id"]))
    assert page.status_code == 200
    words = text_of(page.text)
    assert number(quote["shown_count"]) in words
    exact = re.search(r'data-testid="exact-count">([^<]+)<', page.text)
    assert exact
    assert exact.group(1) == number(staff_view["quote_exact_count"])
    assert number(staff_view["reserved"]) in words
    for event in ("Commande passée", "Facture d'acompte émise", "Paiement enregistré"):
        assert event in words
    assert "Envoi planifié" in words
    assert 'data-testid="waves"' in page.text
    assert "Payée" in words  # the deposit invoice
    assert 'data-testid="hold-submit"' in page.text  # what its state allows
    assert 'data-testid="pay-submit"' not in page.text

    missing = manager.get(order_page("00000000-0000-4000-8000-000000000000"))
    assert missing.status_code == 404
    assert "Commande introuvable" in missing.text


def test_holds_and_cancellation_requests_are_settled_from_the_queue(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    held, asked = create_order(app_client, acme), create_order(app_client, acme)
    for order in (held, asked):
        assert pay_deposit(app_client, acme, am, order["id"]).status_code == 201

    r = post_action(manager, held["id"], "hold", place="commande", reason="Expéditeur à vérifier")
    assert r.headers["location"] == order_page(held["id"]) + "?fait=suspendu"
    assert "Commande suspendue." in manager.get(r.headers["location"]).text
    queue = manager.get(QUEUE)
    assert f'id="suspendues-{held["id"]}"' in queue.text
    assert "Expéditeur à vérifier" in queue.text
    r = post_action(manager, held["id"], "release", place="suspendues")
    assert r.status_code == 303
    assert api_order(app_client, acme, held["id"])["status"] == "scheduled"
    again = post_action(manager, held["id"], "release", place="suspendues")
    assert again.status_code == 409  # the service's refusal, in French
    assert "impossible de remettre la commande en route dans cet état" in text_of(again.text)

    reason = {"reason": "Campagne reportée"}
    cancel = f"/v1/orders/{asked['id']}/cancel"
    assert app_client.post(cancel, json=reason, headers=auth(acme)).status_code == 200
    queue = manager.get(QUEUE)
    assert f'id="annulations-{asked["id"]}"' in queue.text
    assert "Campagne reportée" in queue.text
    r = post_action(manager, asked["id"], "decline", place="annulations", reason="Envoi imminent")
    assert r.status_code == 303
    assert api_order(app_client, acme, asked["id"])["cancellation_requested"] is False
    assert app_client.post(cancel, json=reason, headers=auth(acme)).status_code == 200
    r = post_action(manager, asked["id"], "cancel", place="annulations", refund="oui")
    assert r.status_code == 303
    seen = api_order(app_client, acme, asked["id"])
    assert seen["status"] == "cancelled"
    refunds = [i for i in invoices_of(app_client, acme, asked["id"]) if i["kind"] == "credit_note"]
    assert [i["status"] for i in refunds] == ["refund_due"]  # the deposit refunded
    assert f'id="annulations-{asked["id"]}"' not in manager.get(QUEUE).text


def test_overdue_invoices_are_listed_with_their_penalties(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    order = create_order(app_client, org_keys["acme"])
    deposit = deposit_of(app_client, org_keys["acme"], order["id"])
    assert deposit["number"] not in text_of(manager.get(QUEUE).text.split('id="retards"')[1])
    with unit_of_work() as session:
        session.execute(
            update(Invoice)
            .where(Invoice.id == deposit["id"])
            .values(due_date=clock.today_paris() - timedelta(days=20))
        )
    overdue = text_of(manager.get(QUEUE).text.split('id="retards"')[1])
    assert deposit["number"] in overdue
    assert "Acme" in overdue
    assert "(20 j)" in overdue
    penalty = deposit_of(app_client, org_keys["acme"], order["id"])["penalty"]
    assert penalty["total_cents"] > 4000  # the recovery indemnity and interest
    assert euros(penalty["total_cents"]) in overdue  # as the API computes them
