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

from tests.conftest import ScanningClient
from tests.factories import create_order
from tests.web.conftest import PASSWORD, add_user, csrf_of
from web import i18n

Browser = Callable[..., ScanningClient]
WIDE = {"width": 1366, "height": 800}
ROOT = Path(__file__).resolve().parents[2]
ORDERS = "/app/commandes"
SWITCH = re.compile(r'href="(/langue/(?:fr|en)\?retour=[^"]*)"')


def text_of(page: str) -> str:
    return unescape(re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", page)))


def switch_link(page: str, language: str) -> str:
    """The page's own link to `language`, as a reader would click it."""
    for href in SWITCH.findall(page):
        if href.startswith(f"/langue/{language}?"):
            return unescape(href)
    raise AssertionError(f"no link to {language} on the page")


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
