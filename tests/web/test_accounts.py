"""`rental accounts add-user`: people who sign in, with a password of their own or a
one-time one changed at the first sign-in."""

from __future__ import annotations

import json
from collections.abc import Callable

from rental import launcher
from tests.conftest import ScanningClient
from tests.rental.test_cli import rental
from tests.web.conftest import PASSWORD, csrf_of, sign_in


def test_add_user_with_a_password_on_stdin_signs_in(visitor: Callable[..., ScanningClient]) -> None:
    r = rental(
        "accounts", "add-user", "--organisation", "Acme", "--role", "client",
        "--email", "Marketeuse@Acme.test", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    assert made == {"email": "marketeuse@acme.test", "organisation": "Acme", "role": "client"}
    assert PASSWORD not in r.stdout + r.stderr
    client = sign_in(visitor(), "marketeuse@acme.test")
    assert client.get("/app/segment").status_code == 200

    again = rental(
        "accounts", "add-user", "--organisation", "Acme", "--email", "marketeuse@acme.test",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert again.returncode == 1
    assert "exists already" in again.stderr


def test_add_user_refuses_what_it_cannot_make() -> None:
    for args, stdin, says in (
        (["--organisation", "Acme", "--role", "account_manager"], PASSWORD, "broker"),
        (["--organisation", "Nowhere"], PASSWORD, "add-organisation"),
        (["--organisation", "Acme"], "short", "at least 12 characters"),
        (["--organisation", "Acme"], "", "no password"),
    ):
        r = rental(
            "accounts", "add-user", *args, "--email", "p@acme.test", "--password-stdin",
            stdin=stdin + "\n",
        )  # fmt: skip
        assert r.returncode != 0
        assert says in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    bad = rental("accounts", "add-user", "--organisation", "Acme", "--email", "not-an-email")
    assert bad.returncode == 1
    assert "e-mail address" in bad.stderr


def test_a_one_time_password_must_be_changed_first(visitor: Callable[..., ScanningClient]) -> None:
    r = rental("accounts", "add-user", "--organisation", "Acme", "--email", "new@acme.test")
    assert r.returncode == 0, r.stderr
    one_time = json.loads(r.stdout)["one_time_password"]
    assert "not shown again" in r.stderr

    client = visitor()
    page = client.get("/")
    signed = client.post(
        "/sign-in",
        data={"email": "new@acme.test", "password": one_time, "csrf_token": csrf_of(page.text)},
    )
    assert signed.headers["location"] == "/app/password"
    assert client.get("/app/segment").headers["location"] == "/app/password"
    form = client.get("/app/password").text
    assert "usage unique" in form
    token = csrf_of(form)
    short = client.post(
        "/app/password",
        data={"csrf_token": token, "current": one_time, "new": "court", "again": "court"},
    )
    assert short.status_code == 422
    assert "au moins 12 caractères" in short.text
    done = client.post(
        "/app/password",
        data={"csrf_token": token, "current": one_time, "new": PASSWORD, "again": PASSWORD},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/app/segment"
    assert client.get("/app/segment").status_code == 200
    assert sign_in(visitor(), "new@acme.test").get("/app/segment").status_code == 200


def test_each_rental_up_gives_its_demo_people_fresh_passwords(
    visitor: Callable[..., ScanningClient],
) -> None:
    """`rental up` prints a marketer's and an account manager's sign-in beside the keys; the
    passwords of a previous start stop working, and each lands on their own page."""
    first = launcher.demo_people()
    second = launcher.demo_people()
    assert set(second) == {"marketing@demo.test", "gestion@courtier.test"}
    for email in second:
        assert first[email] != second[email]
        browser = visitor()
        page = browser.get("/")
        stale = browser.post(
            "/sign-in",
            data={"email": email, "password": first[email], "csrf_token": csrf_of(page.text)},
        )
        assert stale.status_code != 303  # refused: the old password is gone
    client = sign_in(visitor(), "marketing@demo.test", second["marketing@demo.test"])
    assert client.get("/").headers["location"].startswith("/app/segment")
    staff = sign_in(visitor(), "gestion@courtier.test", second["gestion@courtier.test"])
    assert staff.get("/").headers["location"].startswith("/app/gestion")


def test_disable_user_and_enable_user_from_the_command_line(
    visitor: Callable[..., ScanningClient],
) -> None:
    r = rental(
        "accounts", "add-user", "--organisation", "Acme", "--email", "depart@acme.test",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    open_session = sign_in(visitor(), "depart@acme.test")
    off = rental("accounts", "disable-user", "Depart@Acme.test")
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout) == {
        "email": "depart@acme.test",
        "organisation": "Acme",
        "disabled": True,
        "keys_revoked": 0,
    }
    assert open_session.get("/app/segment").status_code == 303  # sent to sign in again
    on = rental("accounts", "enable-user", "depart@acme.test")
    assert on.returncode == 0, on.stderr
    assert json.loads(on.stdout)["disabled"] is False
    assert sign_in(visitor(), "depart@acme.test").get("/app/segment").status_code == 200
    unknown = rental("accounts", "disable-user", "nobody@acme.test")
    assert unknown.returncode == 1
    assert "no person signs in with this e-mail" in unknown.stderr
    assert "nobody@acme.test" not in unknown.stderr
