"""The marketer's exclusion files page: upload through the form (read as a stream, its token
checked before the file), the counts shown, never a line, the minimum, another organisation's
file, delete; and the page in a real Chromium (the upload sent by its script, with a progress
bar), on a laptop and a phone."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from tests.conftest import ScanningClient
from tests.exclusions import national, outsiders
from tests.web.conftest import LAPTOP, PASSWORD, PHONE, accessible, add_user, csrf_of, sign_in

Browser = Callable[..., ScanningClient]
PAGE = "/app/repoussoirs"


def _post(client: TestClient, csrf: str | None, lines: list[str], name: str = "") -> Any:
    data = {"csrf_token": csrf, "name": name} if csrf is not None else {"name": name}
    return client.post(
        PAGE,
        data=data,
        files={"file": ("clients.txt", "\n".join(lines).encode(), "text/plain")},
        follow_redirects=False,
    )


def test_a_marketer_uploads_lists_and_deletes_a_file(visitor: Browser) -> None:
    add_user("marketeuse@acme.test")
    add_user("marketeur@globex.test", "Globex")
    acme = sign_in(visitor(), "marketeuse@acme.test")
    page = acme.get(PAGE)
    assert page.status_code == 200
    assert "Pas encore de fichier repoussoir" in page.text
    csrf = csrf_of(page.text)
    garbage = "ceci n'est pas un numéro"
    lines = [national(n) for n in outsiders(130, seed=21)] + [garbage]
    refused = _post(acme, None, lines)
    assert refused.status_code == 403
    r = _post(acme, csrf, lines, name="Clients 2026")
    assert r.status_code == 303
    shown = acme.get(r.headers["location"])
    assert "« Clients 2026 » est enregistré : 131 lignes lues, 130 numéros retenus" in shown.text
    assert garbage not in shown.text
    file_id = re.search(r"<code>([0-9a-f-]{36})</code>", shown.text).group(1)  # type: ignore[union-attr]
    small = _post(acme, csrf, outsiders(99, seed=22))
    assert small.status_code == 422
    assert "il en faut au moins 100" in small.text
    globex = sign_in(visitor(), "marketeur@globex.test")
    assert file_id not in globex.get(PAGE).text
    other = globex.post(
        f"{PAGE}/{file_id}/supprimer", data={"csrf_token": csrf_of(globex.get(PAGE).text)}
    )
    assert other.status_code == 404
    deleted = acme.post(f"{PAGE}/{file_id}/supprimer", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    gone = acme.get(deleted.headers["location"])
    assert "Le fichier a été supprimé." in gone.text
    assert file_id not in gone.text


def test_the_page_in_a_browser(site: str, page: Page, tmp_path: Path) -> None:
    add_user("marketeuse@acme.test")
    file = tmp_path / "clients.csv"
    file.write_text("telephone;nom\n" + "\n".join(f"{n};X" for n in outsiders(150, seed=23)))
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto(site + "/")
    page.get_by_label("Adresse e-mail").fill("marketeuse@acme.test")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.get_by_role("link", name="Repoussoirs").click()
    expect(page.get_by_test_id("no-files")).to_be_visible()
    page.get_by_label("Nom du fichier").fill("Clients 2026")
    page.get_by_label("Fichier des numéros").set_input_files(file)
    with page.expect_request(lambda r: r.resource_type == "xhr" and r.method == "POST"):
        page.get_by_test_id("upload").click()  # sent by the page's script, with progress
    expect(page.get_by_test_id("added")).to_contain_text("150 numéros retenus")
    expect(page.get_by_test_id("exclusion-row")).to_have_count(1)
    accessible(page, site, "exclusions")
    for size, name in ((LAPTOP, "exclusions"), (PHONE, "exclusions-phone")):
        page.set_viewport_size(size)
        page.screenshot(path=tmp_path / f"{name}.png", full_page=True)
    assert refused == []
