"""A browser of the web app: the real application and database, through HTTP, with a cookie
jar of its own per test (the session's app_client would carry cookies from test to test)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kit.db import unit_of_work
from sales.accounts import signin
from sales.accounts.models import Role
from tests.conftest import Canary, ScanningClient

PASSWORD = "Une-phrase-de-passe-assez-longue"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


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
