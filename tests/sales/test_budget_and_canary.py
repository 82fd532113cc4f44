from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from kit.db import unit_of_work
from kit.settings import Settings
from sales.accounts import service as accounts
from sales.accounts.models import AuditEvent, Role
from sales.quotes.models import Quote
from tests.conftest import Canary, ScanningClient, auth


def test_daily_quote_budget_answers_429(
    app_client: ScanningClient, org_keys: dict[str, str], settings: Callable[..., Settings]
) -> None:
    with unit_of_work() as session:
        budgeted = accounts.add_organisation(session, "Budgeted").id
        accounts.add_organisation(session, "Other")
        first = accounts.add_key(session, "Budgeted", Role.client).key
        second = accounts.add_key(session, "Budgeted", Role.client).key
        other = accounts.add_key(session, "Other", Role.client).key
    settings(daily_quote_budget=3)
    for key in (first, first, second):
        assert (
            app_client.post("/v1/quotes", json={"sex": ["F"]}, headers=auth(key)).status_code == 201
        )
    # The budget is the organisation's: a second key does not double it.
    for key in (first, second):
        r = app_client.post("/v1/quotes", json={"sex": ["M"]}, headers=auth(key))
        assert r.status_code == 429
        assert "daily quote budget of 3" in r.json()["detail"]
        assert int(r.headers["Retry-After"]) > 0
    # A refused quote leaves nothing behind: the organisation has its three quotes, audited.
    with unit_of_work() as session:
        stored = session.scalars(select(Quote.id).where(Quote.organisation_id == budgeted)).all()
        audited = session.scalars(
            select(AuditEvent.subject).where(
                AuditEvent.organisation_id == budgeted, AuditEvent.action == "quote.create"
            )
        ).all()
    assert len(stored) == 3
    assert set(audited) == set(stored)
    assert (
        app_client.post("/v1/quotes", json={"sex": ["F"]}, headers=auth(other)).status_code == 201
    )


def test_every_quote_is_audited(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    from sqlalchemy import func, select

    with unit_of_work() as session:
        before = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "quote.create")
        )
    body = {"interests": ["travel"], "regions": ["11"]}
    q = app_client.post("/v1/quotes", json=body, headers=auth(org_keys["globex"])).json()
    with unit_of_work() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.subject == q["id"])).all()
        after = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "quote.create")
        )
    assert after == (before or 0) + 1
    assert rows[0].action == "quote.create"
    assert rows[0].details["criteria"]["interests"] == ["travel"]


def test_canary_catches_a_leak(canary: Canary, secrets_of_base: dict[str, set[str]]) -> None:
    """The scanner that guards every response of the suite does find numbers and ids."""
    number = next(n for n in secrets_of_base["numbers"] if n.startswith("+33"))
    national = "0" + number[3:]
    spaced = " ".join([national[:2]] + [national[i : i + 2] for i in range(2, 10, 2)])
    pid = next(iter(secrets_of_base["ids"]))
    for text in (
        f'{{"x": "{number}"}}',
        f"call {national} now",
        f"tel: {spaced}.",
        f'{{"prospect": {pid}}}',
    ):
        assert canary.hits(text), text
    assert not canary.hits('{"shown_count": 12300, "price": 1234567}')
    assert canary.scanned > 0
