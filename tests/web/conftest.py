"""Browsers of the web app. `visitor` and `marketer`: the real application and database,
through HTTP, with a cookie jar of their own per test (the session's app_client would carry
cookies from test to test). `site` and the Playwright settings: `rental serve` on the test's
home, opened by Debian's chromium in French. Shared by the modules here, so that no test
module imports another."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, ViewportSize

from datasets import snapshot
from kit.db import unit_of_work
from sales.accounts import signin
from sales.accounts.models import Role
from tests.conftest import Canary, ScanningClient, auth
from tests.service import free_port, serve

PASSWORD = "Une-phrase-de-passe-assez-longue"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
AXE_URL = "/__axe-core.js"  # served to the page by Playwright, so the CSP's 'self' admits it
PHONE: ViewportSize = {"width": 390, "height": 844}
LAPTOP: ViewportSize = {"width": 1280, "height": 900}
GSM_TEXT = "Soldes d'hiver : -20% sur tout le magasin avec le code HIVER"
UCS2_TEXT = "Fête des mères : -20% sur les bijoux, même le dimanche"
OLD_MEN = {"sex": ["M"], "age": {"min": 75}}
# Small departments of the base: old men are fewer than the minimum there.
SMALL = ["23", "48", "90", "05", "15", "04", "09", "52", "55", "58", "2A", "32", "46"]


def add_user(
    email: str,
    organisation: str = "Acme",
    role: Role = Role.client,
    password: str | None = PASSWORD,
) -> str | None:
    """A person who signs in (in this test's database); their one-time password, if any."""
    with unit_of_work() as session:
        return signin.add_user(session, organisation, role, email, password).one_time_password


def csrf_of(html: str) -> str:
    found = TOKEN.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> TestClient:
    page = client.get("/")
    r = client.post(
        "/sign-in",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
    )
    assert r.status_code == 303, r.text
    return client


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """A French marketer's browser, which asks for French pages (left alone, Chromium asks for
    its system's language, and the pages would answer in English)."""
    return {**browser_context_args, "locale": "fr-FR"}


@pytest.fixture
def visitor(app_client: ScanningClient, canary: Canary) -> Callable[..., ScanningClient]:
    """`visitor()` (http://) or `visitor(https=True)`: a new browser on the running app that
    does not follow redirects, so that tests see them."""

    def make(https: bool = False) -> ScanningClient:
        base = "https://testserver" if https else "http://testserver"
        client = ScanningClient(app_client.app, base_url=base, follow_redirects=False)
        client.canary = canary
        return client

    return make


@pytest.fixture
def marketer(visitor: Callable[..., ScanningClient]) -> ScanningClient:
    """A client of Acme, signed in."""
    add_user("marketeuse@acme.test")
    return sign_in(visitor(), "marketeuse@acme.test")  # type: ignore[return-value]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's chromium, in French: its date fields read jj/mm/aaaa as our users' do. On
    Linux the browser's own language comes from LANGUAGE (not --lang, nor the context's
    locale, which sets navigator.language and Accept-Language only), and needs its French
    resources (Debian's chromium-l10n); without them the fields fall back to mm/dd/yyyy."""
    found = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if found is None:
        pytest.fail(
            "the browser tests need Debian's chromium: apt-get install chromium chromium-l10n"
        )
    return {
        **browser_type_launch_args,
        "executable_path": found,
        "args": ["--no-sandbox", "--lang=fr-FR"],
        "env": {**os.environ, "LANGUAGE": "fr"},
    }


@pytest.fixture(scope="session")
def base_url() -> None:
    """pytest-base-url's own fixture is deprecated by pytest (a warning, hence an error here);
    pages are opened by their full address."""
    return None


@pytest.fixture
def site(base: snapshot.Snapshot) -> Iterator[str]:
    """`rental serve` on this test's home, database and the run's base."""
    port = free_port()
    proc: subprocess.Popen[bytes] = serve(dict(os.environ), port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def quote(client: ScanningClient, key: str, criteria: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/quotes", json=criteria, headers=auth(key))
    assert r.status_code == 201, r.text
    return dict(r.json())


def find_probe(app_client: ScanningClient, am: str) -> tuple[dict[str, Any], int]:
    """Criteria padded with a small department's partner, and how many old men (T) that small
    department holds, found with the account manager's exact counts."""
    for d, partner in zip(SMALL, SMALL[1:], strict=False):
        old_men = quote(app_client, am, {"departments": [d], **OLD_MEN})["exact_count"]
        if 0 < old_men < 90:
            return {"departments": [d, partner]}, int(old_men)
    raise AssertionError("no small department with a few old men")


GRAVE = ("serious", "critical")


def accessible(page: Page, root: str, name: str, refused: tuple[str, ...] = GRAVE) -> None:
    """axe-core on the page as it stands: no violation of the refused impacts (by default no
    serious or critical one)."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `npm ci --ignore-scripts` (make install does)")
    page.wait_for_load_state()  # a page still arriving after a click has no head yet
    page.route(root + AXE_URL, lambda route: route.fulfill(path=AXE))
    page.add_script_tag(url=root + AXE_URL)
    found = page.evaluate(
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
    )
    grave = [v for v in found if v["impact"] in refused]
    assert grave == [], f"{name}: {grave}"
