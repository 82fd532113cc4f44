"""French first, English available: the language a reader gets (French by default, the
browser's Accept-Language, the switch's cookie), numbers and dates as each language writes
them, escaping kept inside translated sentences, a switch that never leaves the site, and an
English catalogue that covers every text the pages mark for translation."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from playwright.sync_api import Page, expect

from kit.settings import get_settings
from sales.accounts.models import Role
from tests.conftest import ScanningClient, auth
from tests.factories import create_order, create_quote, deposit_of, pay_deposit, send_at
from tests.web.conftest import PASSWORD, add_user, csrf_of, sign_in
from web import i18n

Browser = Callable[..., ScanningClient]
WIDE = {"width": 1366, "height": 800}
ROOT = Path(__file__).resolve().parents[2]
ORDERS = "/app/commandes"
QUEUE = "/app/gestion"
ORDER_FORM = "/app/commander"
ORGANISATIONS = QUEUE + "/organisations"
SWITCH = re.compile(r'href="(/langue/(?:fr|en)\?retour=[^"]*)"')


def text_of(page: str) -> str:
    return unescape(re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", page)))


def switch_link(page: str, language: str) -> str:
    """The page's own link to `language`, as a reader would click it."""
    for href in SWITCH.findall(page):
        if href.startswith(f"/langue/{language}?"):
            return unescape(href)
    raise AssertionError(f"no link to {language} on the page")


def english(client: ScanningClient) -> ScanningClient:
    """The same browser, asking for English from now on."""
    client.headers["Accept-Language"] = "en-GB,en;q=0.9"
    return client


@pytest.fixture
def manager(visitor: Browser) -> ScanningClient:
    """An account manager of the broker, signed in, whose browser asks for English."""
    add_user("manager@courtier.test", get_settings().broker_organisation, Role.account_manager)
    return english(sign_in(visitor(), "manager@courtier.test"))  # type: ignore[arg-type]


def acme_page(client: ScanningClient, am_key: str) -> str:
    r = client.get("/v1/organisations", headers=auth(am_key))
    acme = next(o["id"] for o in r.json() if o["name"] == "Acme")
    return f"{ORGANISATIONS}/{acme}"


def test_a_visitor_reads_french_unless_the_browser_asks_for_english(visitor: Browser) -> None:
    french = visitor().get("/")
    assert '<html lang="fr">' in french.text
    assert "Se connecter" in french.text
    assert "Adresse e-mail" in french.text
    assert french.headers["content-language"] == "fr"

    english = visitor().get("/", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.8"})
    assert '<html lang="en">' in english.text
    assert ">Sign in</button>" in english.text
    assert "Email address" in english.text
    assert "Se connecter" not in english.text

    # French ranked above English, or no language of ours at all: French.
    for header in ("en;q=0.5, fr-CH", "de, it;q=0.4", "en;q=0"):
        assert '<html lang="fr">' in visitor().get("/", headers={"Accept-Language": header}).text


def test_the_switch_remembers_english_and_goes_back_to_the_page(
    marketer: ScanningClient,
) -> None:
    page = marketer.get(f"{ORDERS}?etat=sent")
    assert "Mes commandes" in page.text

    r = marketer.get(switch_link(page.text, "en"))
    assert r.status_code == 303
    assert r.headers["location"] == f"{ORDERS}?etat=sent"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("lang=en;")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie

    english = marketer.get(ORDERS)
    words = text_of(english.text)
    assert '<html lang="en">' in english.text
    for shown in ("My orders", "Orders", "Invoices", "Quotes", "Sign out", "Targeting and count"):
        assert shown in words
    assert "Mes commandes" not in words
    assert "Se déconnecter" not in words

    # The cookie wins over the browser's header, both ways.
    r = marketer.get(switch_link(english.text, "fr"))
    assert r.headers["location"] == ORDERS
    french = marketer.get(ORDERS, headers={"Accept-Language": "en"})
    assert "Mes commandes" in french.text
    assert '<html lang="fr">' in french.text


def test_numbers_amounts_and_dates_follow_the_language(
    app_client: ScanningClient, org_keys: dict[str, str], marketer: ScanningClient
) -> None:
    order = create_order(app_client, org_keys["acme"], quantity=1500)
    total = order["total"]["amount_incl_vat_cents"]
    euros, cents = divmod(total, 100)

    french = text_of(marketer.get(ORDERS).text)
    assert "1\u202f500" in french
    assert f"{euros:,}".replace(",", "\u202f") + f",{cents:02d}\u00a0€" in french
    assert re.search(r"\d\d/\d\d/\d{4} à \d\d:\d\d", french)
    assert "En attente d'acompte" in french

    english = text_of(marketer.get(ORDERS, headers={"Accept-Language": "en"}).text)
    assert "1,500" in english
    assert "1\u202f500" not in english
    assert f"€{euros:,}.{cents:02d}" in english
    assert re.search(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d", english)
    assert "Awaiting deposit" in english


def test_a_payload_inside_a_translated_sentence_is_still_escaped(
    app_client: ScanningClient, org_keys: dict[str, str], marketer: ScanningClient
) -> None:
    order = create_order(app_client, org_keys["acme"])
    page = f"{ORDERS}/{order['id']}"
    payload = '<script>alert("x")</script>'
    token = csrf_of(marketer.get(page).text)
    r = marketer.post(f"{page}/annuler", data={"csrf_token": token, "reason": payload})
    assert r.status_code == 303, r.text

    english = marketer.get(page, headers={"Accept-Language": "en"}).text
    # The timeline's "%(what)s : %(value)s", English "reason: ...", with the reason escaped.
    assert "reason: &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in english
    assert payload not in english


@pytest.mark.parametrize(
    "retour",
    [
        "https://evil.test/",
        "//evil.test/app",
        "/\\evil.test",
        "http:/evil.test",
        "javascript:alert(1)",
        "/app\r\nSet-Cookie: x=1",
        "app/commandes",
    ],
)
def test_the_switch_never_sends_the_browser_to_another_site(visitor: Browser, retour: str) -> None:
    r = visitor().get("/langue/en", params={"retour": retour})
    assert r.status_code == 303
    assert r.headers["location"] == "/"


def test_the_switch_knows_two_languages_only(visitor: Browser) -> None:
    r = visitor().get("/langue/de", params={"retour": "/"})
    assert r.status_code == 422
    assert "set-cookie" not in r.headers


def test_every_text_marked_for_translation_has_its_english() -> None:
    """A text wrapped in _() in a template or in web/*.py, with no English (or an empty, fuzzy
    or placeholder-mismatched one), fails here: `make translations`, then translate."""
    with (ROOT / "babel.cfg").open() as cfg:
        methods, options = parse_mapping_cfg(cfg)  # type: ignore[no-untyped-call]

    def in_web(path: str) -> bool:
        parts = Path(path).relative_to(ROOT).parts
        return not parts or parts[0] == "web"

    marked = {
        (m if isinstance(m, str) else m[0]): where
        for where, _, m, *_ in extract_from_dir(ROOT, methods, options, directory_filter=in_web)
    }
    assert len(marked) > 200  # the pages converted so far
    with (i18n.LOCALES / "en" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale="en")

    problems = []
    for msgid, where in sorted(marked.items()):
        message = catalog.get(msgid)
        if message is None or message.fuzzy:
            problems.append(f"{where}: {msgid!r}")
            continue
        strings = [message.string] if isinstance(message.string, str) else message.string
        if not strings or not all(strings):
            problems.append(f"{where}: {msgid!r} (empty)")
        elif errors := list(message.check(catalog)):
            problems.append(f"{where}: {msgid!r}: {errors}")
    assert not problems, "no English for:\n" + "\n".join(problems)


def test_a_marketer_switches_to_english_in_a_browser_and_back(
    site: str,  # noqa: F811
    page: Page,
    tmp_path: Path,
    app_client: ScanningClient,
    org_keys: dict[str, str],
) -> None:
    """By the links in the header, on the sign-in page and on the orders list; screenshots of
    both pages in both languages go to the test's temporary folder."""
    create_order(app_client, org_keys["acme"], quantity=1500)
    add_user("marketeuse@acme.test")
    page.set_viewport_size(WIDE)  # type: ignore[arg-type]
    page.goto(site + "/")
    page.screenshot(path=tmp_path / "sign-in-fr.png", full_page=True)
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.screenshot(path=tmp_path / "sign-in-en.png", full_page=True)
    page.get_by_label("Email address").fill("marketeuse@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("link", name="Orders", exact=True).click()
    expect(page.get_by_role("heading", name="My orders")).to_be_visible()
    expect(page.get_by_test_id("order-row")).to_contain_text("1,500")
    page.screenshot(path=tmp_path / "orders-en.png", full_page=True)
    page.get_by_role("link", name="Français").click()
    expect(page.get_by_role("heading", name="Mes commandes")).to_be_visible()
    expect(page.get_by_test_id("order-row")).to_contain_text("1\u202f500")
    page.screenshot(path=tmp_path / "orders-fr.png", full_page=True)


def test_a_wrong_password_is_refused_in_english(visitor: Browser) -> None:
    add_user("marketeuse@acme.test")
    client = english(visitor())
    token = csrf_of(client.get("/").text)
    data = {"email": "marketeuse@acme.test", "password": "not-the-password", "csrf_token": token}
    r = client.post("/sign-in", data=data)
    assert r.status_code == 401
    words = text_of(r.text)
    assert "Wrong email or password. Check them and try again." in words
    assert "incorrect" not in words


def test_a_client_is_refused_the_staff_pages_in_english(marketer: ScanningClient) -> None:
    r = english(marketer).get(ORGANISATIONS)
    assert r.status_code == 403
    words = text_of(r.text)
    assert "For account managers only" in words
    assert "your account has no access to it" in words
    assert "réservée" not in words


def test_the_work_queue_reads_in_english_and_its_forms_answer_in_english(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    order = create_order(app_client, org_keys["acme"])
    queue = manager.get(QUEUE)
    words = text_of(queue.text)
    for shown in ("Work queue", "Deposits awaited", "Content to review", "Orders on hold"):
        assert shown in words
    for empty in ("No message to review.", "No order on hold.", "No cancellation request."):
        assert empty in words
    assert "Acomptes attendus" not in words

    # A payment typed as an English reader writes it, refused then recorded, in English.
    path = f"{QUEUE}/commandes/{order['id']}/pay"
    typed = {"csrf_token": csrf_of(queue.text), "place": "acomptes", "reference": "VIR-EN-1"}
    wrong = manager.post(path, data=typed | {"amount": "three hundred"})
    assert wrong.status_code == 422
    assert "in euros with at most two decimal places (for example 1,234.56)" in text_of(wrong.text)

    cents = deposit_of(app_client, org_keys["acme"], order["id"])["amount_incl_vat_cents"]
    r = manager.post(path, data=typed | {"amount": f"{cents / 100:,.2f}"})
    assert r.status_code == 303, text_of(r.text)
    after = text_of(manager.get(r.headers["location"]).text)
    assert "Payment recorded." in after
    assert "No order is awaiting its deposit." in after


def test_the_organisation_settings_read_in_english(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    listing = text_of(manager.get(ORGANISATIONS).text)
    assert "The broker's clients and the broker itself" in listing
    assert "Standard grid" in listing
    assert "broker" in listing

    page = acme_page(app_client, org_keys["am"])
    r = manager.get(page)
    words = text_of(r.text)
    for shown in (
        "Acme · settings",
        "Contract terms",
        "Message review",
        "Refund the deposit if the order is cancelled",
        "Price grid",
        "Tier 1: from how many contacts",
        "Transport mainland France (€ excl. VAT per segment)",
        "VAT rate (%)",  # a literal % in a translated label
        "People",
        "Save the grid",
    ):
        assert shown in words, shown
    for french in ("Conditions du contrat", "Grille tarifaire", "Enregistrer", "Palier"):
        assert french not in words
    assert re.search(r"API keys \(\d+ active\)", words)
    assert 'value="0.045"' in r.text  # decimals as English writes them (French: 0,045)

    # A form's refusal beside its field, and what a form that went through says, in English.
    token = csrf_of(r.text)
    refused = manager.post(f"{page}/grille", data={"csrf_token": token, "do": "save", "vat": "x"})
    assert refused.status_code == 422
    assert "Enter the VAT rate as a percentage, from 0 to 100" in text_of(refused.text)
    saved = manager.post(
        f"{page}/conditions", data={"csrf_token": token, "content_review": "manual"}
    )
    assert saved.status_code == 303
    assert "Contract terms saved." in text_of(manager.get(saved.headers["location"]).text)


def test_a_client_order_page_reads_in_english(
    app_client: ScanningClient, org_keys: dict[str, str], marketer: ScanningClient
) -> None:
    acme = org_keys["acme"]
    order = create_order(app_client, acme, quantity=1500)
    assert pay_deposit(app_client, acme, org_keys["am"], order["id"]).status_code == 201
    r = english(marketer).get(f"{ORDERS}/{order['id']}")
    assert r.status_code == 200
    words = text_of(r.text)
    for shown in (
        f"Order {order['id'][:8]}",
        "Summary",
        "1,500 contacts",
        "Total price incl. VAT",
        "Deposit incl. VAT",
        "Content review",
        "Send waves",
        "Time zone",
        "Invoices and credit notes",
        "Due date",
        "Send report",
        "The send report will be available as soon as sending starts.",
        "History",
        "Order placed",
        "Deposit invoice issued",
        "Payment recorded",
        "What would you like to do?",
        "Request cancellation",
    ):
        assert shown in words, shown
    status = re.search(r'data-testid="order-status">([^<]+)<', r.text)
    assert status
    assert status.group(1) == "Scheduled"
    assert 'data-label="Time zone"' in r.text  # the waves' cells, stacked on a phone
    assert re.search(r'data-testid="invoice-status"[^>]*>Paid<', r.text)
    for french in ("Vagues d'envoi", "Factures et avoirs", "Historique", "Planifiée", "Acompte"):
        assert french not in words, french


def test_the_order_form_and_its_summary_read_in_english(
    app_client: ScanningClient, org_keys: dict[str, str], marketer: ScanningClient
) -> None:
    client = english(marketer)
    # A refusal page built in advance (module level), drawn in the reader's language.
    missing = client.get(ORDER_FORM, params={"devis": "no-such-quote"})
    assert missing.status_code == 404
    assert "This count does not exist in your organisation." in text_of(missing.text)

    quote = create_quote(app_client, org_keys["acme"])
    form = client.get(ORDER_FORM, params={"devis": quote["id"]})
    assert form.status_code == 200
    for shown in ("Sender name", "Review the order", "Send waves"):
        assert shown in text_of(form.text), shown
    # order.js's one sentence comes from the page, in the reader's language.
    assert 'data-failed="The preview could not be updated' in form.text

    fields = {"csrf_token": csrf_of(form.text), "devis": quote["id"], "quantity": "500"}
    panel = client.post(f"{ORDER_FORM}/apercu", data=fields | {"message": "Fête ce soir"})
    words = text_of(panel.text)
    for shown in (
        "Characters",
        "Encoding",
        "Overseas",
        'ê → "e"?',
        "Enter the sender name shown on the phones.",
        "Choose the send date and time.",
    ):
        assert shown in words, shown

    typed = fields | {"message": "Soldes d'hiver", "sender": "ACME", "send_at": send_at()[:16]}
    waves = text_of(client.post(f"{ORDER_FORM}/apercu", data=typed).text)
    assert "Sender accepted: ACME" in waves
    assert re.search(r"[A-Z][a-z]+day \d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d", waves)
    assert "local time" in waves

    refused = client.post(f"{ORDER_FORM}/resume", data=typed | {"quantity": "many"})
    assert refused.status_code == 422
    assert "Check the quantity, the sender name (3 to 11 letters or digits) and the date." in (
        text_of(refused.text)
    )

    summary = client.post(f"{ORDER_FORM}/resume", data=typed)
    assert summary.status_code == 200, text_of(summary.text)
    words = text_of(summary.text)
    for shown in ("Review the order", "(Paris time)", "Deposit to pay", "Confirm the order"):
        assert shown in words, shown
    assert "heure de Paris" not in words


def test_the_staff_order_page_reads_in_english(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    order = create_order(app_client, org_keys["acme"])
    r = manager.get(f"{QUEUE}/commandes/{order['id']}")
    assert r.status_code == 200
    words = text_of(r.text)
    for shown in (
        f"Order {order['id'][:8]}",
        "Work queue",
        "Shown to the client",
        "The quote's count",
        "Quantity ordered / reserved",
        "Invoices and credit notes",
        "No send plan yet: recipients are drawn once the deposit is paid.",
        "History",
        "Record a payment",
        "Put the order on hold",
    ):
        assert shown in words, shown
    status = re.search(r'data-testid="order-status">([^<]+)<', r.text)
    assert status
    assert status.group(1) == "Awaiting deposit"
    for french in ("Affiché au client", "Factures et avoirs", "Suspendre la commande"):
        assert french not in words, french
