"""The web app in a real Chromium (Debian's package, driven by Playwright): a marketer signs
in, ticks criteria and sees the count follow without a reload, with no script refused by the
page's Content-Security-Policy. Screenshots go to the test's temporary folder."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.web.conftest import PASSWORD, add_user

COUNTED = re.compile(r"^\d{1,3}(\u202f\d{3})*$")  # a number, not "…" any more


def test_a_marketer_signs_in_and_the_count_follows_the_clicks(
    site: str, page: Page, tmp_path: Path
) -> None:
    add_user("marketeuse@acme.test")
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto(site + "/")
    page.get_by_label("Adresse e-mail").fill("marketeuse@acme.test")
    page.get_by_label("Mot de passe").fill("not the password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("error-summary")).to_contain_text("mot de passe incorrect")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(site + "/app/segment")
    count = page.get_by_test_id("live-count")
    expect(count).to_have_text(COUNTED)  # the page came first, its count right after
    whole = count.inner_text()
    page.screenshot(path=tmp_path / "builder.png", full_page=True)

    page.get_by_label("Femme").check()  # no reload: the panel alone changes
    page.locator("#departments").get_by_text("Alpes-Maritimes").click()
    expect(count).not_to_have_text(whole)
    narrowed = count.inner_text()
    assert int(narrowed.replace("\u202f", "")) < int(whole.replace("\u202f", ""))
    page.get_by_label("De", exact=True).fill("104")
    expect(count).to_have_text("moins de 100")
    expect(page.locator("#count-panel")).to_contain_text("vie privée")
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    page.screenshot(path=tmp_path / "below-minimum.png", full_page=True)
    assert refused == []


def _sign_in(page: Page, site: str) -> None:
    page.goto(site + "/")
    page.get_by_label("Adresse e-mail").fill("marketeuse@acme.test")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(site + "/app/segment")


def test_clicking_a_department_on_the_map_changes_the_live_count(
    site: str, page: Page, tmp_path: Path
) -> None:
    add_user("marketeuse@acme.test")
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    _sign_in(page, site)
    count = page.get_by_test_id("live-count")
    expect(count).to_have_text(COUNTED)
    whole = count.inner_text()
    gironde = page.locator('#segment-map [data-code="33"]')
    expect(gironde).to_have_attribute("aria-checked", "false")
    page.screenshot(path=tmp_path / "map.png", full_page=True)

    gironde.click()  # one department: its box ticks, the count and the map follow
    expect(count).not_to_have_text(whole)
    expect(page.locator('#departments input[value="33"]')).to_be_checked()
    expect(gironde).to_have_attribute("aria-checked", "true")
    expect(page.locator('#segment-map [data-code="13"]')).to_have_class(re.compile("dept--outside"))
    one = count.inner_text()
    assert int(one.replace("\u202f", "")) < int(whole.replace("\u202f", ""))

    landes = page.locator('#segment-map [data-code="40"]')  # the keyboard does the same
    landes.focus()
    page.keyboard.press("Enter")
    expect(count).not_to_have_text(one)
    expect(page.locator('#departments input[value="40"]')).to_be_checked()
    page.keyboard.press("Space")
    expect(count).to_have_text(one)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    page.screenshot(path=tmp_path / "map-gironde.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=tmp_path / "map-phone.png", full_page=True)
    assert refused == []
