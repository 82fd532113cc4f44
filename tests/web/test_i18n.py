"""French first, English available: the language a reader gets (French by default, the
browser's Accept-Language, the switch's cookie), numbers and dates as each language writes
them, escaping kept inside translated sentences, a switch that never leaves the site, and an
English catalogue that covers every text the pages mark for translation."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from html import unescape
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from playwright.sync_api import Page, expect

from datasets import reference
from kit.settings import Settings, get_settings
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


# The segment builder ------------------------------------------------------------------------

BUILDER = "/app/segment"
COUNT = BUILDER + "/count"
PHONE = {"width": 390, "height": 844}
# Words a French sentence can hardly do without, and letters English pages do not write: an
# English page showing one of them has a sentence left in French. Proper nouns (departments,
# regions) are taken out first: they keep their names.
FRENCH = re.compile(
    r"\b(le|la|les|des|du|de|une|est|pour|avec|sans|vos|votre|dans|sur|et|ou|pas|ce|cette|qui|"
    r"aux|au|personnes|comptage|commande|cochez|saisissez|cliquez|chiffre|ciblage)\b"
    r"|[àâçéèêëîïôûùüœ«»]",
    re.IGNORECASE,
)
ATTRIBUTES = re.compile(
    r"\b(?:aria-label|title|placeholder|alt|data-(?:label|empty|failed|updating|search-failed))"
    r'="([^"]*)"'
)


@cache
def _proper_nouns() -> tuple[str, ...]:
    names = [*reference.departments()["name"], *reference.regions()["name"], "Français"]
    return tuple(sorted(set(names), key=len, reverse=True))


def french_left(page: str) -> list[str]:
    """What reads as French on an English page: its text and the attributes people hear or
    read (accessible names, the script's sentences), proper nouns aside."""
    shown = text_of(re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S))
    heard = [unescape(a) for a in ATTRIBUTES.findall(page)]
    left = []
    for text in [shown, *heard]:
        for name in _proper_nouns():
            text = text.replace(name, " ")
        left += [text[max(0, m.start() - 30) : m.end() + 30].strip() for m in FRENCH.finditer(text)]
    return left


def test_the_segment_builder_reads_in_english(marketer: ScanningClient) -> None:
    page = english(marketer).get(BUILDER)
    assert page.status_code == 200
    words = text_of(page.text)
    for shown in (
        "Targeting and count",
        "Tick your targeting criteria: the count updates with each click.",
        "Where",
        "Who",
        "Exclusions",
        "From 18 to",  # the age's bounds
        "Reachable people",
        'Click "Count" to see the number of reachable people.',  # the count, without script
        "The colours follow the count.",  # the legend, before the count
        "Segment breakdown",
        "Base map: svg-maps",
    ):
        assert shown in words, shown
    # The criteria and their values, labelled from the catalogue's English.
    for label in (
        "Sex",
        "Woman",
        "Socio-professional group (PCS)",
        "Manual workers",
        "Housing tenure",
        "Tenant",
        "Dwelling type",
        "Flat",
        "Income band",
        "Interests",
        "Gardening",
        "Exclude: Interests",
    ):
        assert f">{label}<" in page.text or f"> {label}<" in page.text or label in words, label
    # segment.js's sentences, from the page.
    assert 'data-updating="Updating the count…"' in page.text
    assert 'data-failed="The count could not be updated: click &#34;Count&#34;."' in page.text
    assert 'data-search-failed="The search failed: try again."' in page.text
    assert french_left(page.text) == []
    # The scan sees French where there is French.
    assert len(french_left(marketer.get(BUILDER, headers={"Accept-Language": "fr"}).text)) > 50


def test_the_live_count_answers_in_english(marketer: ScanningClient) -> None:
    client = english(marketer)
    token = csrf_of(client.get(BUILDER).text)
    whole = client.post(COUNT, data={"csrf_token": token, "departments": ["06", "83"]})
    assert whole.status_code == 200
    words = text_of(whole.text)
    count = re.search(r'data-testid="live-count">([^<]+)<', whole.text)
    assert count
    assert re.fullmatch(r"\d{1,3}(,\d{3})*", count.group(1))
    for shown in (
        "Reachable people",
        "Estimated price:",
        "excl. VAT",
        "incl. VAT",
        "Rounded and slightly adjusted to protect the people counted",
        "Order",
        "Age",  # the charts
        "Women",
        "Men",
        "Regions",
        "Outside the targeting: a department your geographic criteria leave out",  # the legend
    ):
        assert shown in words, shown
    assert re.search(r"aged \d\d-\d\d", words)
    assert re.search(r"\d{1,3}(,\d{3})* to \d{1,3}(,\d{3})* people", words)  # a colour step
    # The map's departments, as a screen reader names them.
    assert re.search(
        r'data-code="06"[^>]*data-label="Alpes-Maritimes \(06\): [\d,]+ people"', whole.text
    )
    assert re.search(r'data-code="13"[^>]*data-label="[^"]+: outside the targeting"', whole.text)
    assert french_left(whole.text) == []

    small = client.post(
        COUNT, data={"csrf_token": token, "sex": "M", "age_min": "104", "departments": "48"}
    )
    words = text_of(small.text)
    assert re.search(r'data-testid="live-count">fewer than 100<', small.text)
    assert "This targeting reaches fewer than 100 people: to protect their privacy" in words
    assert "hidden" in words
    assert "Estimated price" not in words
    assert french_left(small.text) == []

    wrong = client.post(COUNT, data={"csrf_token": token, "age_min": "60", "age_max": "30"})
    assert wrong.status_code == 422
    words = text_of(wrong.text)
    assert "The maximum age is below the minimum age: swap them." in words
    assert "No count: correct the criteria shown in error." in words
    assert french_left(wrong.text) == []


def test_a_refused_count_and_the_commune_search_answer_in_english(
    marketer: ScanningClient, settings: Callable[..., Settings]
) -> None:
    client = english(marketer)
    token = csrf_of(client.get(BUILDER).text)
    found = client.get(BUILDER + "/communes", params={"q": "Nice"})
    assert re.search(r"\d+ communes? found", text_of(found.text))
    assert 'No commune matches "zzzz".' in text_of(
        client.get(BUILDER + "/communes", params={"q": "zzzz"}).text
    )
    postcodes = client.post(COUNT, data={"csrf_token": token, "postcodes": "06000, 99999"})
    assert "Unknown postcode: 99999. Enter 5-digit French postcodes" in text_of(postcodes.text)

    settings(daily_quote_budget=1)
    assert client.post(COUNT, data={"csrf_token": token}).status_code == 200  # the day's one
    refused = client.post(COUNT, data={"csrf_token": token, "sex": "F"})
    words = text_of(refused.text)
    assert "Your organisation has used up today's counts; they renew at midnight." in words
    assert "comptages" not in words


def test_a_translated_attribute_is_never_cut_by_its_quotes() -> None:
    """`_()` gives markup that is not escaped again: inside an attribute, an English '"' would
    end it ('click "Count"'). Such a text is `| forceescape`d, or its English has no quote."""
    with (i18n.LOCALES / "en" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale="en")
    in_attribute = re.compile(r'[\w-]+="\{\{ _\("((?:[^"\\]|\\.)*)"\)([^}]*)\}\}"')
    checked = 0
    for template in (ROOT / "web" / "templates").glob("*.html"):
        for msgid, filters in in_attribute.findall(template.read_text(encoding="utf-8")):
            checked += 1
            message = catalog.get(msgid.replace('\\"', '"'))
            english = str(message.string) if message else ""
            assert "forceescape" in filters or not re.search(r'["<&]', english), (
                f"{template.name}: {msgid!r}"
            )
    assert checked > 5


def test_segment_js_carries_no_sentence_of_its_own() -> None:
    """Its sentences are the page's (data attributes), so that they follow the language."""
    script = (ROOT / "web" / "static" / "segment.js").read_text(encoding="utf-8")
    code = re.sub(r"^\s*//.*$|\s//[^\"'\n]*$", "", script, flags=re.M)
    literals = re.findall(r'"((?:[^"\\\n]|\\.)*)"|\'((?:[^\'\\\n]|\\.)*)\'', code)
    for literal in (a or b for a, b in literals):
        assert literal.isascii(), literal
        assert not re.search(r"[A-Za-z]+ [A-Za-z]+ [A-Za-z]+", literal), literal
    for attribute in ("status.dataset.updating", "status.dataset.failed", "dataset.searchFailed"):
        assert attribute in code, attribute


@pytest.mark.parametrize("width", [WIDE, PHONE], ids=["laptop", "phone"])
def test_the_builder_in_english_in_a_browser(
    site: str, page: Page, tmp_path: Path, width: dict[str, int]
) -> None:
    """The count follows the clicks in English and the script says its sentences in English
    (a count that fails, a search that fails); screenshots go to the test's temporary folder."""
    add_user("marketeuse@acme.test")
    page.set_viewport_size(width)  # type: ignore[arg-type]
    page.goto(site + "/")
    page.get_by_role("link", name="English").click()
    page.get_by_label("Email address").fill("marketeuse@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Targeting and count")).to_be_visible()
    count = page.get_by_test_id("live-count")
    expect(count).to_have_text(re.compile(r"^\d{1,3}(,\d{3})*$"))
    page.screenshot(path=tmp_path / "builder-en.png", full_page=True)

    page.get_by_label("From", exact=True).fill("104")
    page.locator("#departments").get_by_text("Lozère").click()
    expect(count).to_have_text("fewer than 100")
    expect(page.locator("#count-panel")).to_contain_text("to protect their privacy")
    page.locator(".builder__count").screenshot(path=tmp_path / "below-minimum-en.png")

    page.route("**/app/segment/**", lambda route: route.abort())
    page.get_by_label("Man", exact=True).check()
    expect(page.locator("#count-status")).to_have_text(
        'The count could not be updated: click "Count".'
    )
    page.get_by_label("Add a commune").fill("Nice")
    expect(page.locator("#commune_search-results")).to_have_text("The search failed: try again.")


def test_the_order_and_settings_pages_have_no_french_left(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    marketer: ScanningClient,
    manager: ScanningClient,
) -> None:
    """Proper nouns aside, an English reader meets no French sentence on the order form, its
    summary, the orders list or an organisation's settings."""
    client = english(marketer)
    quote = create_quote(app_client, org_keys["acme"])
    form = client.get(ORDER_FORM, params={"devis": quote["id"]})
    fields = {
        "csrf_token": csrf_of(form.text),
        "devis": quote["id"],
        "quantity": "500",
        "message": "Soldes d'hiver",
        "sender": "ACME",
        "send_at": send_at()[:16],
    }
    summary = client.post(f"{ORDER_FORM}/resume", data=fields)
    settings_page = manager.get(acme_page(app_client, org_keys["am"]))
    for name, page in (
        ("order form", form),
        ("summary", summary),
        ("orders", client.get(ORDERS)),
        ("settings", settings_page),
    ):
        assert page.status_code == 200, name
        assert french_left(page.text) == [], name
