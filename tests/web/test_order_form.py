"""The order form: the composer counts as the API does, typed text stays text, and an order
placed through the page is the order the API would place."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from kit import clock
from tests.conftest import ScanningClient, auth
from tests.factories import create_quote, deposit_of, send_at
from tests.web.conftest import GSM_TEXT, PASSWORD, UCS2_TEXT, add_user, csrf_of

KEY = "idempotency_key"


def _quote_from_builder(marketer: ScanningClient) -> str:
    """The quote of the builder's count panel, as its "Commander" link carries it."""
    token = csrf_of(marketer.get("/app/segment").text)
    form = {"csrf_token": token, "sex": "F", "age_min": "25", "age_max": "60"}
    panel = marketer.post("/app/segment/count", data=form)
    found = re.search(r'href="/app/commander\?devis=([0-9a-f-]+)"', panel.text)
    assert found, "no order link in the count panel"
    return found.group(1)


def _form(marketer: ScanningClient, quote_id: str) -> dict[str, Any]:
    page = marketer.get(f"/app/commander?devis={quote_id}")
    assert page.status_code == 200, page.text
    assert 'data-testid="message-input"' in page.text
    return {"csrf_token": csrf_of(page.text), "devis": quote_id}


def _confirmation(summary: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The summary's confirmation form: what was typed and the summary's one-time key."""
    found = re.search(rf'name="{KEY}" value="([^"]+)"', summary)
    assert found, "no key in the summary's confirmation"
    return {**fields, KEY: found.group(1)}


def _cell(html: str, name: str) -> str:
    found = re.search(rf'data-testid="{name}">([^<]*)<', html)
    assert found, f"no {name} in the panel"
    return found.group(1)


def test_the_composer_counts_as_the_api_does(
    marketer: ScanningClient, org_keys: dict[str, str]
) -> None:
    form = _form(marketer, _quote_from_builder(marketer))
    for text, encoding in ((GSM_TEXT, "GSM-7"), (UCS2_TEXT, "UCS-2")):
        panel = marketer.post("/app/commander/apercu", data={**form, "message": text})
        assert panel.status_code == 200
        api = marketer.post(
            "/v1/messages/check", json={"message": text}, headers=auth(org_keys["acme"])
        ).json()
        for zone, key in (("metro", "segments"), ("overseas", "segments-overseas")):
            assert _cell(panel.text, key) == str(api[zone]["segments"])
            assert _cell(panel.text, f"characters-{zone}") == str(api[zone]["characters"])
            assert _cell(panel.text, f"encoding-{zone}") == api[zone]["encoding"] == encoding
        assert "STOP au 36180" in panel.text
    # The characters that force UCS-2 are shown with a look-alike.
    assert "<mark>ê</mark> → « e »" in panel.text


def test_a_typed_script_or_template_shows_as_text(marketer: ScanningClient) -> None:
    form = _form(marketer, _quote_from_builder(marketer))
    typed = "<script>alert(1)</script> {{ 'zq' ~ 'xw' }} ê"
    fields = {**form, "message": typed, "sender": "<b>x</b>", "quantity": "500"}
    panel = marketer.post("/app/commander/apercu", data=fields)
    page = marketer.post("/app/commander/resume", data={**fields, "send_at": send_at()[:16]})
    for html in (panel.text, page.text):
        assert "<script>alert" not in html
        assert "<b>x</b>" not in html
        assert "zqxw" not in html  # never evaluated
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ &#39;zq&#39; ~ &#39;xw&#39; }}" in page.text
    assert page.status_code == 422  # the API's rule: only {{ civilite }}


def test_an_order_placed_on_the_page_is_the_apis(
    marketer: ScanningClient, org_keys: dict[str, str]
) -> None:
    key = org_keys["acme"]
    quote_id = _quote_from_builder(marketer)
    when = send_at()
    fields = {
        **_form(marketer, quote_id),
        "quantity": "500",
        "message": UCS2_TEXT,
        "sender": "ACME",
        "send_at": when[:16],  # as a datetime-local field sends it: Paris time
    }
    summary = marketer.post("/app/commander/resume", data=fields)
    assert summary.status_code == 200, summary.text
    assert 'data-testid="order-submit"' in summary.text
    placed = marketer.post("/app/commander/confirmer", data=_confirmation(summary.text, fields))
    assert placed.status_code == 303
    order_id = placed.headers["location"].rsplit("/", 1)[1]
    assert f'href="/app/commandes/{order_id}"' in marketer.get(placed.headers["location"]).text

    body = {"quote_id": quote_id, "quantity": 500, "message": UCS2_TEXT, "sender": "ACME"}
    api = marketer.post("/v1/orders", json={**body, "send_at": when}, headers=auth(key))
    assert api.status_code == 201, api.text
    page_order = marketer.get(f"/v1/orders/{order_id}", headers=auth(key)).json()
    api_order = api.json()
    for name in ("quantity", "encoding", "characters", "segments", "price"):
        assert page_order[name] == api_order[name], name
    instant = datetime.fromisoformat
    assert instant(page_order["send_at"]) == instant(api_order["send_at"])
    page_deposit = deposit_of(marketer, key, order_id)
    api_deposit = deposit_of(marketer, key, api_order["id"])
    for name in ("amount_excl_vat_cents", "amount_incl_vat_cents"):
        assert page_deposit[name] == api_deposit[name]
    total = page_order["price"]["total_incl_vat_cents"]
    assert f"{total // 100:,}".replace(",", "\u202f") in summary.text


def test_a_confirmation_sent_twice_places_one_order(
    marketer: ScanningClient, org_keys: dict[str, str]
) -> None:
    fields = {
        **_form(marketer, _quote_from_builder(marketer)),
        "quantity": "300",
        "message": GSM_TEXT,
        "sender": "ACME",
        "send_at": send_at()[:16],
    }
    confirm = _confirmation(marketer.post("/app/commander/resume", data=fields).text, fields)
    first = marketer.post("/app/commander/confirmer", data=confirm)  # a double click, or
    again = marketer.post("/app/commander/confirmer", data=confirm)  # the page sent again
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    orders = marketer.get("/v1/orders", headers=auth(org_keys["acme"])).json()["items"]
    assert [o["id"] for o in orders] == [first.headers["location"].rsplit("/", 1)[1]]

    # A new summary is a new order; a confirmation without the summary's key shows it again.
    other = _confirmation(marketer.post("/app/commander/resume", data=fields).text, fields)
    assert other[KEY] != confirm[KEY]
    assert marketer.post("/app/commander/confirmer", data=other).status_code == 303
    unkeyed = marketer.post("/app/commander/confirmer", data=fields)
    assert unkeyed.status_code == 200
    assert 'data-testid="order-submit"' in unkeyed.text
    changed = marketer.post("/app/commander/confirmer", data={**confirm, "quantity": "250"})
    assert changed.status_code == 200  # the key of another order: its summary, to confirm
    orders = marketer.get("/v1/orders", headers=auth(org_keys["acme"])).json()["items"]
    assert len(orders) == 2


def test_a_confirmation_without_its_token_is_refused(
    marketer: ScanningClient, org_keys: dict[str, str]
) -> None:
    fields = {
        **_form(marketer, _quote_from_builder(marketer)),
        "quantity": "500",
        "message": GSM_TEXT,
        "sender": "ACME",
        "send_at": send_at()[:16],
    }
    fields["csrf_token"] = "forged"
    r = marketer.post("/app/commander/confirmer", data=fields)
    assert r.status_code == 403
    orders = marketer.get("/v1/orders", headers=auth(org_keys["acme"])).json()
    assert orders["items"] == []


def test_another_organisations_quote_is_not_found(
    marketer: ScanningClient, org_keys: dict[str, str]
) -> None:
    theirs = create_quote(marketer, org_keys["globex"])
    r = marketer.get(f"/app/commander?devis={theirs['id']}")
    assert r.status_code == 404
    assert "Devis introuvable" in r.text
    form = _form(marketer, _quote_from_builder(marketer))
    live = marketer.post("/app/commander/apercu", data={**form, "devis": theirs["id"]})
    assert live.status_code == 404


def test_the_waves_of_a_sunday_start_on_monday(marketer: ScanningClient) -> None:
    form = _form(marketer, _quote_from_builder(marketer))
    day = clock.now().astimezone(clock.PARIS) + timedelta(days=7)
    sunday = day + timedelta(days=(6 - day.weekday()))
    fields = {**form, "message": GSM_TEXT, "send_at": f"{sunday:%Y-%m-%d}T10:00"}
    panel = marketer.post("/app/commander/apercu", data=fields)
    assert "France métropolitaine" in panel.text
    assert "du lundi" in panel.text or "du mardi" in panel.text  # a holiday Monday moves it on
    assert "Pas à l'heure choisie" in panel.text


def test_in_a_browser_a_marketer_composes_and_orders(
    site: str,
    page: Page,
    tmp_path: Path,
) -> None:
    add_user("marketeuse@acme.test")
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto(site + "/")
    page.get_by_label("Adresse e-mail").fill("marketeuse@acme.test")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("order-start").click()
    expect(page).to_have_url(re.compile(r"/app/commander\?devis="))
    page.get_by_test_id("message-input").fill(GSM_TEXT)
    segments = page.get_by_test_id("segments")
    expect(segments).to_have_text("1")
    page.get_by_test_id("message-input").fill(UCS2_TEXT)
    expect(segments).to_have_text("2")  # UCS-2: 70 characters a message, 67 a part
    expect(page.locator(".composer__misfits")).to_contain_text("ê")
    page.get_by_label("Nom d'expéditeur").fill("ACME")
    sunday = clock.now().astimezone(clock.PARIS) + timedelta(days=7)
    sunday += timedelta(days=6 - sunday.weekday())
    page.get_by_label("Date et heure d'envoi").fill(f"{sunday:%Y-%m-%d}T10:00")
    expect(page.locator(".waves")).to_contain_text("Pas à l'heure choisie")
    for width, name in ((1280, "order-form"), (390, "order-form-phone")):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=tmp_path / f"{name}.png", full_page=True)
    page.get_by_test_id("order-review").click()
    expect(page.get_by_test_id("deposit")).to_contain_text("€")
    page.screenshot(path=tmp_path / "order-summary.png", full_page=True)
    page.get_by_test_id("order-submit").click()
    expect(page.get_by_test_id("order-link")).to_be_visible()
    assert not refused, refused
