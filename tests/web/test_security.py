"""What keeps the web app's visitors safe: headers, cookies, CSRF, escaping, the throttle."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx2
from sqlalchemy import update

from kit import clock
from kit.db import unit_of_work
from sales.accounts import service as accounts
from sales.accounts.models import WebSession
from sales.accounts.signin import FAILURES_PER_ADDRESS, FAILURES_PER_EMAIL
from tests.conftest import ScanningClient, auth
from tests.web.conftest import PASSWORD, add_user, csrf_of, sign_in

Browser = Callable[..., ScanningClient]


def _directives(policy: str) -> dict[str, str]:
    return {
        part.split()[0]: part.partition(" ")[2]
        for part in (p.strip() for p in policy.split(";"))
        if part
    }


def test_every_page_has_a_strict_policy_and_no_inline_script(
    visitor: Browser, marketer: ScanningClient
) -> None:
    for client, path in ((visitor(), "/"), (marketer, "/app/segment")):
        r = client.get(path)
        assert r.status_code == 200
        policy = _directives(r.headers["content-security-policy"])
        assert policy["script-src"] == "'self'"
        assert "unsafe-inline" not in r.headers["content-security-policy"]
        assert policy["frame-ancestors"] == "'none'"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["cache-control"] == "no-store"
        # Scripts only as files of the service: none inline, no handler attributes.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text)
        assert not re.search(r"\son[a-z]+=", r.text)
    js = visitor().get("/static/segment.js")
    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"]
    assert js.headers["x-content-type-options"] == "nosniff"


def test_the_api_gets_the_headers_too_and_is_unchanged(
    visitor: Browser, org_keys: dict[str, str]
) -> None:
    r = visitor().get("/v1/criteria", headers=auth(org_keys["acme"]))
    assert r.status_code == 200
    assert "script-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "/app/segment" not in visitor().get("/openapi.json").text  # pages are not the API


def test_a_session_cookie_opens_no_api_route(marketer: ScanningClient) -> None:
    """Programs use keys; a visitor's cookie alone never acts on the API (no CSRF there)."""
    assert marketer.get("/v1/criteria").status_code == 401
    assert marketer.post("/v1/quotes", json={"sex": ["F"]}).status_code == 401


def _cookie(response: httpx2.Response, name: str) -> str:
    headers = response.headers.get_list("set-cookie")
    found = [h for h in headers if h.startswith(name + "=")]
    assert found, f"no {name} cookie set"
    return str(found[0])


def test_the_session_cookie_is_httponly_lax_expiring_and_secure_over_https(
    visitor: Browser,
) -> None:
    add_user("marketeuse@acme.test")
    for https in (False, True):
        client = visitor(https=https)
        page = client.get("/")
        r = client.post(
            "/sign-in",
            data={
                "email": "marketeuse@acme.test",
                "password": PASSWORD,
                "csrf_token": csrf_of(page.text),
            },
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/app/segment"
        cookie = _cookie(r, "rental_session").lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "path=/" in cookie
        max_age = int(re.search(r"max-age=(\d+)", cookie).group(1))  # type: ignore[union-attr]
        assert 0 < max_age <= 8 * 3600
        assert ("secure" in cookie.split("; ")) is https


def test_an_expired_or_ended_session_sends_back_to_sign_in(marketer: ScanningClient) -> None:
    assert marketer.get("/app/segment").status_code == 200
    with unit_of_work() as session:
        session.execute(update(WebSession).values(expires_at=clock.now()))
    r = marketer.get("/app/segment")
    assert r.status_code == 303
    assert r.headers["location"] == "/"
    assert 'data-testid="login-email"' in marketer.get("/").text


def test_sign_out_ends_the_session_on_the_server(marketer: ScanningClient) -> None:
    page = marketer.get("/app/segment")
    token = marketer.cookies["rental_session"]
    r = marketer.post("/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    marketer.cookies.set("rental_session", token)  # a copy of the cookie kept by someone
    assert marketer.get("/app/segment").status_code == 303


def test_forms_without_their_csrf_token_are_refused(
    visitor: Browser, marketer: ScanningClient
) -> None:
    add_user("autre@acme.test")
    stranger = visitor()
    r = stranger.post("/sign-in", data={"email": "autre@acme.test", "password": PASSWORD})
    assert r.status_code == 403
    assert "rental_session" not in r.headers.get("set-cookie", "")
    assert "expiré" in r.text

    for path, data in (
        ("/app/segment/count", {"sex": "F"}),
        ("/app/segment", {"sex": "F"}),
        ("/sign-out", {}),
    ):
        for token in (None, "forged-token"):
            form = dict(data, **({"csrf_token": token} if token else {}))
            refused = marketer.post(path, data=form)
            assert refused.status_code == 403, path
            assert "Formulaire refusé" in refused.text
    assert marketer.get("/app/segment").status_code == 200  # still signed in


def test_typed_values_are_shown_as_text(visitor: Browser) -> None:
    payload = '"><script>alert(1)</script>{{ 7*7 }}'
    with unit_of_work() as session:
        accounts.add_organisation(session, payload)
    add_user("xss@example.test", organisation=payload)
    client = sign_in(visitor(), "xss@example.test")
    page = client.get("/app/segment").text
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;{{ 7*7 }}" in page

    refused = visitor()
    form = refused.get("/")
    r = refused.post(
        "/sign-in",
        data={"email": payload, "password": "x" * 12, "csrf_token": csrf_of(form.text)},
    )
    assert r.status_code == 401
    assert "<script>alert(1)" not in r.text
    assert "&lt;script&gt;" in r.text


def test_a_wrong_password_says_so_and_opens_nothing(visitor: Browser) -> None:
    add_user("marketeuse@acme.test")
    for email, password in (
        ("marketeuse@acme.test", "not-the-password"),
        ("nobody@acme.test", PASSWORD),  # the same answer: no account is revealed
    ):
        client = visitor()
        page = client.get("/")
        r = client.post(
            "/sign-in",
            data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        )
        assert r.status_code == 401
        assert "E-mail ou mot de passe incorrect" in r.text
        assert 'data-testid="error-summary"' in r.text
        assert f'value="{email}"' in r.text  # the e-mail is kept, the password is not
        assert "rental_session" not in r.headers.get("set-cookie", "")


def _attempt(client: ScanningClient, email: str, password: str) -> httpx2.Response:
    page = client.get("/")
    return client.post(
        "/sign-in",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
    )


def test_sign_in_is_throttled_per_email_then_per_address(visitor: Browser) -> None:
    add_user("marketeuse@acme.test")
    client = visitor()
    for _ in range(FAILURES_PER_EMAIL):
        assert _attempt(client, "marketeuse@acme.test", "wrong-password!").status_code == 401
    # Even the right password is refused now, before it is checked.
    r = _attempt(client, "marketeuse@acme.test", PASSWORD)
    assert r.status_code == 429
    assert 15 * 60 >= int(r.headers["retry-after"]) > 0
    assert "Trop de tentatives" in r.text
    assert "minutes" in r.text

    add_user("collegue@acme.test")
    # Another e-mail from the same address still signs in (in a visitor of its own).
    assert _attempt(visitor(), "collegue@acme.test", PASSWORD).status_code == 303
    for i in range(FAILURES_PER_ADDRESS - FAILURES_PER_EMAIL):
        _attempt(client, f"guess{i}@acme.test", "wrong-password!")
    # One address trying many e-mails is stopped too, whatever the e-mail.
    assert _attempt(visitor(), "collegue@acme.test", PASSWORD).status_code == 429
