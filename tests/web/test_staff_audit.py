"""The quote audit's page: the pairs of quotes the audit task flagged (sales/quotes/audit.py,
run in process as the beat would), their criteria in words, the other organisation as a hint
of collusion, and nothing of the people in the base."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest

from kit.settings import get_settings
from sales.accounts.models import Role
from sales.quotes import tasks
from tests.conftest import Canary, ScanningClient, auth
from tests.web.conftest import OLD_MEN, add_user, find_probe, quote, sign_in

Browser = Callable[..., ScanningClient]
AUDIT = "/app/gestion/audit"


@pytest.fixture
def probe(app_client: ScanningClient, org_keys: dict[str, str]) -> tuple[dict[str, Any], int]:
    return find_probe(app_client, org_keys["am"])


@pytest.fixture
def auditor(visitor: Browser) -> ScanningClient:
    add_user("audit@courtier.test", get_settings().broker_organisation, Role.account_manager)
    return sign_in(visitor(), "audit@courtier.test")  # type: ignore[return-value]


def text_of(page: str) -> str:
    return unescape(re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_a_pair_made_with_exclude_is_listed_in_words_without_anyone_in_it(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    probe: tuple[dict[str, Any], int],
    auditor: ScanningClient,
    canary: Canary,
) -> None:
    padded, old_men = probe
    small = padded["departments"][0]
    quote(app_client, org_keys["acme"], padded)
    quote(
        app_client,
        org_keys["acme"],
        {**padded, "exclude": {"departments": [small], **OLD_MEN}},
    )
    assert "Aucun devis signalé" in auditor.get(AUDIT).text  # audited off the request path
    assert tasks.audit() >= 1

    page = auditor.get(AUDIT)
    assert page.status_code == 200
    assert canary.hits(page.text) == []  # no number nor prospect id of the base
    assert "prospect_id" not in page.text
    words = text_of(page.text)
    assert re.search(r"\bAcme\b", words)
    assert f"{old_men} personne" in words  # the exact difference, for the broker
    assert "Sauf (exclusion) : " in words
    assert "Sexe : Homme" in words
    assert "Âge : de 75 à" in words
    assert "seulement dans le devis signalé Sauf (exclusion)" in words  # what tells them apart
    assert 'data-testid="collusion"' not in page.text  # one organisation alone


def test_two_organisations_on_the_same_small_group_show_as_possible_collusion(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    probe: tuple[dict[str, Any], int],
    auditor: ScanningClient,
) -> None:
    padded, old_men = probe
    small = padded["departments"][0]
    quote(app_client, org_keys["acme"], padded)
    quote(
        app_client, org_keys["globex"], {**padded, "exclude": {"departments": [small], **OLD_MEN}}
    )
    tasks.audit()

    page = auditor.get(AUDIT)
    assert 'data-testid="collusion"' in page.text
    words = text_of(page.text)
    assert "avec le devis de Acme" in words
    assert "collusion possible" in words
    orgs = app_client.get("/v1/organisations", headers=auth(org_keys["am"])).json()
    acme = next(o["id"] for o in orgs if o["name"] == "Acme")
    globex = next(o["id"] for o in orgs if o["name"] == "Globex")
    assert 'data-testid="flagged-quote"' in auditor.get(f"{AUDIT}?organisation={globex}").text
    assert "Aucun devis signalé" in auditor.get(f"{AUDIT}?organisation={acme}").text
    assert auditor.get(f"{AUDIT}?organisation=abc&page=-1").status_code == 200
