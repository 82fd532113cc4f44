"""The segment builder names the organisation's exclusion files: ticked, they leave their
members out of the live count and of the quote an order is placed from; in a real Chromium,
the count follows the tick."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from datasets import snapshot
from kit.db import unit_of_work
from sales.quotes.models import Quote
from tests.conftest import ScanningClient
from tests.exclusions import national, outsiders, people_of
from tests.web.conftest import LAPTOP, PASSWORD, PHONE, accessible, add_user, csrf_of, sign_in

Browser = Callable[..., ScanningClient]
BUILDER = "/app/segment"
COUNT = BUILDER + "/count"
FILES = "/app/repoussoirs"
SEGMENT = "35"
COUNTED = re.compile(r"^\d{1,3}(\u202f\d{3})*$")


@pytest.fixture(scope="module")
def members(base: snapshot.Snapshot) -> list[str]:
    """Numbers of people of the segment's department, as a customer's file writes them."""
    return [national(n) for n in people_of(base, SEGMENT)["e164"].to_list()[:400]]


def _upload(client: TestClient, lines: list[str], name: str) -> str:
    csrf = csrf_of(client.get(FILES).text)
    r = client.post(
        FILES,
        data={"csrf_token": csrf, "name": name},
        files={"file": ("clients.txt", "\n".join(lines).encode(), "text/plain")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return r.headers["location"].split("ajoute=")[1]


def _shown(html: str) -> int:
    found = re.search(r'data-testid="live-count">([^<]*)<', html)
    assert found, "no live count in the page"
    return int(found.group(1).replace("\u202f", ""))


def _quote_of(html: str) -> str:
    found = re.search(r"/app/commander\?devis=([0-9a-f-]{36})", html)
    assert found, "no order link in the count"
    return found.group(1)


def test_a_ticked_file_leaves_its_members_out_of_the_count_and_the_order(
    visitor: Browser, members: list[str]
) -> None:
    add_user("marketeuse@acme.test")
    add_user("marketeur@globex.test", "Globex")
    acme = sign_in(visitor(), "marketeuse@acme.test")
    assert "Vous n'avez pas encore de fichier repoussoir" in acme.get(BUILDER).text
    file_id = _upload(acme, members, "Clients 2026")
    page = acme.get(BUILDER)
    assert re.search(rf'name="exclusion_files" value="{file_id}"(?! checked)', page.text)
    assert "Clients 2026" in page.text
    assert re.search(r"\b400 numéros", page.text), re.findall(r"[^>]{0,20}numéros", page.text)
    form: dict[str, Any] = {"csrf_token": csrf_of(page.text), "departments": SEGMENT}
    whole = acme.post(COUNT, data=form)
    without = acme.post(COUNT, data={**form, "exclusion_files": file_id})
    assert whole.status_code == without.status_code == 200
    # The people of the file are left out: the count drops by about their number (each count
    # is rounded and its noise is the people's own, so "about").
    assert 250 < _shown(whole.text) - _shown(without.text) < 550
    # The order is placed from the count's quote: its criteria carry the file.
    with unit_of_work() as session:
        quote = session.get(Quote, _quote_of(without.text))
        assert quote is not None
        assert quote.criteria["exclusion_files"] == [file_id]
    # Without script, the page comes back with the file still ticked.
    again = acme.post(BUILDER, data={**form, "exclusion_files": file_id})
    assert re.search(rf'name="exclusion_files" value="{file_id}" checked', again.text)
    assert _shown(again.text) == _shown(without.text)

    # Another organisation neither sees the file nor counts with it.
    globex = sign_in(visitor(), "marketeur@globex.test")
    theirs = globex.get(BUILDER)
    assert file_id not in theirs.text
    refused = globex.post(
        COUNT, data={"csrf_token": csrf_of(theirs.text), "exclusion_files": file_id}
    )
    assert "Un fichier repoussoir coché" in refused.text
    assert "devis=" not in refused.text


def test_the_file_in_the_builder_in_a_browser(
    site: str, page: Page, tmp_path: Path, visitor: Browser, members: list[str]
) -> None:
    add_user("marketeuse@acme.test")
    _upload(sign_in(visitor(), "marketeuse@acme.test"), members, "Clients 2026")
    _upload(sign_in(visitor(), "marketeuse@acme.test"), outsiders(120, 31), "Désabonnés")
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.set_viewport_size(LAPTOP)
    page.goto(site + "/")
    page.get_by_label("Adresse e-mail").fill("marketeuse@acme.test")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(site + BUILDER)
    count = page.get_by_test_id("live-count")
    expect(count).to_have_text(COUNTED)
    whole = count.inner_text()
    page.locator(f'#departments input[value="{SEGMENT}"]').check()
    expect(count).not_to_have_text(whole)
    expect(count).to_have_text(COUNTED)
    segment = count.inner_text()
    files = page.get_by_test_id("exclusion-files")
    expect(files).to_contain_text("Désabonnés")
    files.get_by_label(re.compile("Clients 2026")).check()  # no reload: the count follows
    expect(count).not_to_have_text(segment)
    expect(count).to_have_text(COUNTED)
    left = int(count.inner_text().replace("\u202f", ""))
    assert 250 < int(segment.replace("\u202f", "")) - left < 550
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    files.scroll_into_view_if_needed()
    page.screenshot(path=tmp_path / "builder-files.png")
    accessible(page, site, "builder with exclusion files")
    page.set_viewport_size(PHONE)
    files.scroll_into_view_if_needed()
    page.screenshot(path=tmp_path / "builder-files-phone.png")
    assert refused == []
