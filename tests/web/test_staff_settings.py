"""The organisations' settings pages: terms, price grid with its preview, people and API keys;
the same services and audit rows as the API, a first password or a key shown once."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, ViewportSize, expect
from sqlalchemy import select

from kit import clock
from kit.db import unit_of_work
from kit.settings import get_settings
from sales.accounts.models import AuditEvent, Role
from sales.accounts.repository import AccountRepository, SignInRepository
from sales.accounts.service import digest
from sales.pricing.grid import default_grid
from sales.pricing.service import price
from tests.conftest import ScanningClient, auth
from tests.factories import create_quote
from tests.web.conftest import PASSWORD, accessible, add_user, csrf_of, sign_in
from web.templating import euros

Browser = Callable[..., ScanningClient]
LIST = "/app/gestion/organisations"
LAPTOP: ViewportSize = {"width": 1366, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
FORMS = ("conditions", "grille", "grille/standard", "personnes", "cles", "cles/1/revocation")


@pytest.fixture
def manager(visitor: Browser) -> ScanningClient:
    """An account manager of the broker, signed in."""
    add_user("reglages@courtier.test", get_settings().broker_organisation, Role.account_manager)
    return sign_in(visitor(), "reglages@courtier.test")  # type: ignore[return-value]


def org_id(client: ScanningClient, am_key: str, name: str) -> int:
    r = client.get("/v1/organisations", headers=auth(am_key))
    return int(next(o["id"] for o in r.json() if o["name"] == name))


def page_of(organisation_id: int) -> str:
    return f"{LIST}/{organisation_id}"


def text_of(page: str) -> str:
    return unescape(re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", page)))


def post(manager: ScanningClient, organisation_id: int, form: str, **typed: str) -> Any:
    token = csrf_of(manager.get(page_of(organisation_id)).text)
    return manager.post(f"{page_of(organisation_id)}/{form}", data={"csrf_token": token, **typed})


def grid_fields(**changes: str) -> dict[str, str]:
    """The default grid as the editor shows it, with some fields changed."""
    grid = default_grid()
    fields = {"name": grid.name, "metro": "0,045", "overseas": "0,09", "vat": "20"}
    for i, tier in enumerate(grid.rental_tiers):
        fields[f"tier-{i}-min"] = str(tier.min_volume)
        fields[f"tier-{i}-price"] = str(tier.per_contact_eur).replace(".", ",")
    return fields | changes


def secret_of(page: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">([^<]+)<', page)
    assert found, f"no {testid} in the page"
    return found.group(1)


def audit_rows(action: str) -> list[dict[str, Any]]:
    with unit_of_work() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return [dict(r.details) for r in rows]


def test_the_list_links_each_organisation_to_its_settings(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    acme = org_id(app_client, org_keys["am"], "Acme")
    page = manager.get(LIST)
    assert page.status_code == 200
    assert f'href="{page_of(acme)}"' in page.text
    words = text_of(page.text)
    assert "Acme Automatique Grille standard 0 1" in words  # no person yet, one key
    assert 'href="/app/gestion/organisations" aria-current="page"' in page.text


def test_staff_change_the_terms_and_the_api_shows_them(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    acme = org_id(app_client, org_keys["am"], "Acme")
    typed = {
        "content_review": "manual",
        "refund": "oui",
        "billing_address": "Acme SAS, 12 rue de la Paix, 75002 Paris",
        "vat_number": "fr 12 345678901",
        "siren": "123 456 789",
    }
    r = post(manager, acme, "conditions", **typed)
    assert (r.status_code, r.headers["location"]) == (
        303,
        f"{page_of(acme)}?fait=conditions#conditions",
    )
    shown = next(
        o
        for o in app_client.get("/v1/organisations", headers=auth(org_keys["am"])).json()
        if o["id"] == acme
    )
    assert shown["content_review"] == "manual"
    assert shown["refund_deposit_on_cancel"] is True
    assert shown["billing_address"] == typed["billing_address"]
    assert (shown["vat_number"], shown["siren"]) == ("FR12345678901", "123456789")
    assert audit_rows("organisation.terms") == [
        {
            "content_review": "manual",
            "refund_deposit_on_cancel": True,
            "billing_address": typed["billing_address"],
            "vat_number": "FR12345678901",
            "siren": "123456789",
        }
    ]
    page = manager.get(r.headers["location"])
    assert "Conditions du contrat enregistrées." in page.text
    assert '<option value="manual" selected>' in page.text
    assert "Manuelle" in text_of(manager.get(LIST).text)


def test_a_bad_vat_number_is_refused_in_french_and_keeps_what_was_typed(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    acme = org_id(app_client, org_keys["am"], "Acme")
    r = post(
        manager,
        acme,
        "conditions",
        content_review="manual",
        billing_address="Une adresse toute neuve, 75001 Paris",
        vat_number="12345",
        siren="123456789",
    )
    assert r.status_code == 422
    assert 'href="#conditions-vat_number"' in r.text  # the summary links to the field
    assert "numéro de TVA intracommunautaire : le code du pays en deux lettres" in r.text
    assert 'id="conditions-vat_number-error"' in r.text
    assert "Une adresse toute neuve, 75001 Paris</textarea>" in r.text
    assert 'value="12345"' in r.text
    assert '<option value="manual" selected>' in r.text
    shown = app_client.get("/v1/organisations", headers=auth(org_keys["am"])).json()
    acme_now = next(o for o in shown if o["id"] == acme)
    assert acme_now["content_review"] == "auto"  # nothing saved
    assert acme_now["billing_address"] is None


def test_a_saved_grid_prices_the_organisations_next_quotes(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    acme = org_id(app_client, org_keys["am"], "Acme")
    before = create_quote(app_client, org_keys["acme"])["price"]
    tiers = {f"tier-{i}-price": "0,5" for i in range(len(default_grid().rental_tiers))}
    r = post(manager, acme, "grille", do="save", **grid_fields(name="contrat 2027", **tiers))
    assert r.status_code == 303, r.text
    after = create_quote(app_client, org_keys["acme"])["price"]
    assert Decimal(after["rental_per_contact_eur"]) == Decimal("0.5")
    assert after["grid"] == "contrat 2027"
    assert after["total_incl_vat_cents"] > before["total_incl_vat_cents"]
    other = create_quote(app_client, org_keys["globex"])["price"]
    assert other["grid"] == default_grid().name  # another organisation keeps its grid
    assert [d["version"] for d in audit_rows("price_grid.set")] == [1]
    page = manager.get(r.headers["location"])
    assert "Grille du contrat « contrat 2027 », version 1" in page.text
    r = post(manager, acme, "grille/standard")
    assert r.headers["location"].endswith("?fait=grille-standard#grille")
    assert create_quote(app_client, org_keys["acme"])["price"]["grid"] == default_grid().name
    assert audit_rows("price_grid.clear") == [{}]


def test_the_preview_prices_sample_orders_and_saves_nothing(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    acme = org_id(app_client, org_keys["am"], "Acme")
    typed = grid_fields(**{"tier-0-price": "0,2"}, quantity="3 000", overseas_share="10")
    r = post(manager, acme, "grille", do="preview", **typed)
    assert r.status_code == 200
    assert 'data-testid="grid-preview-result"' in r.text
    grid = default_grid().model_copy(deep=True)
    grid.rental_tiers[0].per_contact_eur = Decimal("0.2")
    words = text_of(r.text)
    for quantity in (3_000, 10_000, 50_000):
        expected = price(grid, quantity, {"metro": 90, "overseas": 10})
        assert euros(expected.total_incl_vat_cents) in words
    assert 'value="0,2"' in r.text  # the grid being edited stays in the form
    state = app_client.get(f"/v1/organisations/{acme}/price-grid", headers=auth(org_keys["am"]))
    assert state.json()["contract"] is False


def test_a_wrong_grid_is_refused_beside_its_fields(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    acme = org_id(app_client, org_keys["am"], "Acme")
    typed = grid_fields(**{"tier-1-price": "deux euros", "tier-0-min": "100", "vat": "20"})
    r = post(manager, acme, "grille", do="save", **typed)
    assert r.status_code == 422
    assert "Palier 2 : prix par contact en euros" in r.text
    assert 'value="deux euros"' in r.text
    r = post(manager, acme, "grille", do="save", **grid_fields(**{"tier-0-min": "100"}))
    assert r.status_code == 422
    assert "Le premier palier doit commencer au volume 0." in r.text
    state = app_client.get(f"/v1/organisations/{acme}/price-grid", headers=auth(org_keys["am"]))
    assert state.json()["contract"] is False


def test_a_new_person_signs_in_with_the_password_shown_once_and_must_change_it(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    manager: ScanningClient,
    visitor: Browser,
) -> None:
    acme = org_id(app_client, org_keys["am"], "Acme")
    r = post(manager, acme, "personnes", email="Nouvelle@Acme.test", role="client")
    assert r.status_code == 200
    password = secret_of(r.text, "one-time-password")
    assert "il ne sera plus affiché" in r.text
    assert audit_rows("user.added") == [{"email": "nouvelle@acme.test", "role": "client"}]
    page = manager.get(page_of(acme))
    assert "nouvelle@acme.test" in page.text
    assert "mot de passe provisoire" in page.text
    assert password not in page.text
    browser = visitor()
    form = browser.get("/")
    signed = browser.post(
        "/sign-in",
        data={
            "email": "nouvelle@acme.test",
            "password": password,
            "csrf_token": csrf_of(form.text),
        },
    )
    assert (signed.status_code, signed.headers["location"]) == (303, "/app/password")
    assert browser.get("/app/segment").headers["location"] == "/app/password"
    again = post(manager, acme, "personnes", email="nouvelle@acme.test", role="client")
    assert again.status_code == 409
    assert "Une personne a déjà un compte avec cet e-mail" in again.text
    wrong = post(manager, acme, "personnes", email="pas-un-email", role="admin")
    assert wrong.status_code == 422
    assert "Choisissez un rôle parmi ceux proposés." in wrong.text  # no staff in a client's


def test_a_key_works_until_revoked_and_is_shown_on_no_other_page(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    acme = org_id(app_client, org_keys["am"], "Acme")
    r = post(manager, acme, "cles", label="CRM maison", role="client")
    assert r.status_code == 200
    key = secret_of(r.text, "new-key")
    assert "elle ne sera plus affichée" in r.text
    assert r.text.count(key) == 1
    grid = f"/v1/organisations/{acme}/price-grid"
    assert app_client.get(grid, headers=auth(key)).status_code == 200
    for path in (page_of(acme), LIST, "/app/gestion", "/app/gestion/audit"):
        assert key not in manager.get(path).text, path
    page = manager.get(page_of(acme)).text
    assert f"{key[:10]}…" in page
    assert "CRM maison" in page
    revoke = re.search(rf'action="([^"]+/revocation)"[^$]*?{re.escape(key[:10])}…', page)
    assert revoke, "no revocation form for the key"
    r = manager.post(revoke.group(1), data={"csrf_token": csrf_of(page)})
    assert (r.status_code, r.headers["location"]) == (
        303,
        f"{page_of(acme)}?fait=cle-revoquee#cles",
    )
    assert app_client.get(grid, headers=auth(key)).status_code == 401
    assert "révoquée le" in manager.get(page_of(acme)).text
    twice = manager.post(revoke.group(1), data={"csrf_token": csrf_of(page)})
    assert twice.status_code == 409
    assert "Cette clé n'est plus active" in text_of(twice.text)
    assert [d["prefix"] for d in audit_rows("api_key.issued")] == [key[:10]]
    assert [d["prefix"] for d in audit_rows("api_key.revoked")] == [key[:10]]


def _press(manager: ScanningClient, page: str, action: str, email: str) -> Any:
    """The button of this action on this person's row, pressed: a redirect back."""
    form = re.search(rf'action="([^"]+/{action})"[^$]*?{re.escape(email)}', page)
    assert form, f"no {action} form for {email}"
    r = manager.post(form.group(1), data={"csrf_token": csrf_of(page)})
    assert r.status_code == 303, r.text
    return r


def test_a_leaver_is_disabled_at_once_and_enabled_again(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    manager: ScanningClient,
    marketer: ScanningClient,
    visitor: Browser,
) -> None:
    """Disabling a person ends the session they have open, refuses their password as a wrong
    one would be and revokes their API keys; enabling them lets them sign in again."""
    acme = org_id(app_client, org_keys["am"], "Acme")
    assert marketer.get("/app/segment").status_code == 200
    with unit_of_work() as session:  # a key of their own, as `rental accounts add-key` gives
        person = SignInRepository(session).user_by_email("marketeuse@acme.test")
        assert person is not None
        key = "rk_" + "leaver-key-of-the-test-abcdefghij"
        AccountRepository(session).add_key(person, key[:10], digest(key), clock.now())
    grid = f"/v1/organisations/{acme}/price-grid"
    assert app_client.get(grid, headers=auth(key)).status_code == 200
    r = _press(manager, manager.get(page_of(acme)).text, "desactivation", "marketeuse@acme.test")
    assert r.headers["location"] == f"{page_of(acme)}?fait=compte-desactive#personnes"
    assert marketer.get("/app/segment").status_code == 303  # the open session ended
    stranger = visitor()
    refused = stranger.post(
        "/sign-in",
        data={
            "email": "marketeuse@acme.test",
            "password": PASSWORD,
            "csrf_token": csrf_of(stranger.get("/").text),
        },
    )
    assert refused.status_code != 303
    assert "E-mail ou mot de passe incorrect" in text_of(refused.text)  # as any wrong one
    assert app_client.get(grid, headers=auth(key)).status_code == 401
    shown = manager.get(r.headers["location"]).text
    assert "désactivé le" in shown
    assert "Compte désactivé : la personne ne peut plus se connecter" in text_of(shown)
    _press(manager, shown, "reactivation", "marketeuse@acme.test")
    assert sign_in(visitor(), "marketeuse@acme.test").get("/app/segment").status_code == 200
    assert app_client.get(grid, headers=auth(key)).status_code == 401  # keys stay revoked
    assert audit_rows("user.disabled") == [{"email": "marketeuse@acme.test", "keys_revoked": 1}]
    assert audit_rows("user.enabled") == [{"email": "marketeuse@acme.test", "keys_revoked": 0}]


def test_staff_cannot_disable_their_own_account(manager: ScanningClient) -> None:
    with unit_of_work() as session:
        me = SignInRepository(session).user_by_email("reglages@courtier.test")
        assert me is not None
        own, me_id = me.organisation_id, me.id
    page = manager.get(page_of(own)).text
    r = manager.post(
        f"{page_of(own)}/personnes/{me_id}/desactivation", data={"csrf_token": csrf_of(page)}
    )
    assert r.status_code == 409
    assert "Vous ne pouvez pas désactiver votre propre compte" in text_of(r.text)
    assert manager.get(page_of(own)).status_code == 200  # still signed in
    unknown = manager.post(
        f"{page_of(own)}/personnes/999999/desactivation", data={"csrf_token": csrf_of(page)}
    )
    assert unknown.status_code == 409
    assert "pas de compte dans cette organisation" in text_of(unknown.text)


def test_a_client_gets_a_403_page_on_the_settings_pages(
    app_client: ScanningClient, org_keys: dict[str, str], marketer: ScanningClient
) -> None:
    acme = org_id(app_client, org_keys["am"], "Acme")
    token = csrf_of(marketer.get("/app/segment").text)
    for path in (LIST, page_of(acme)):
        r = marketer.get(path)
        assert r.status_code == 403, path
        assert "réservée aux chargés de compte" in r.text
    for form in FORMS:
        r = marketer.post(
            f"{page_of(acme)}/{form}",
            data={"csrf_token": token, "content_review": "manual", "email": "x@acme.test"},
        )
        assert r.status_code == 403, form
    shown = app_client.get("/v1/organisations", headers=auth(org_keys["am"])).json()
    assert next(o for o in shown if o["id"] == acme)["content_review"] == "auto"
    assert 'href="/app/gestion/organisations"' not in marketer.get("/app/segment").text


def test_every_settings_form_refuses_a_missing_or_forged_csrf_token(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    acme = org_id(app_client, org_keys["am"], "Acme")
    typed = {"content_review": "manual", "email": "csrf@acme.test", "role": "client"}
    for form in FORMS:
        for token in (None, "forged-token"):
            data = dict(typed, **({"csrf_token": token} if token else {}))
            r = manager.post(f"{page_of(acme)}/{form}", data=data | grid_fields(do="save"))
            assert r.status_code == 403, form
            assert "Formulaire refusé" in r.text
    shown = app_client.get("/v1/organisations", headers=auth(org_keys["am"])).json()
    assert next(o for o in shown if o["id"] == acme)["content_review"] == "auto"
    assert "csrf@acme.test" not in manager.get(page_of(acme)).text
    state = app_client.get(f"/v1/organisations/{acme}/price-grid", headers=auth(org_keys["am"]))
    assert state.json()["contract"] is False


def test_an_unknown_organisation_is_a_page_not_found(manager: ScanningClient) -> None:
    for path in (page_of(999_999), f"{LIST}/acme"):
        r = manager.get(path)
        assert r.status_code == 404, path
        assert "Organisation introuvable" in r.text


def test_the_brokers_page_offers_staff_roles(
    app_client: ScanningClient, org_keys: dict[str, str], manager: ScanningClient
) -> None:
    broker = org_id(app_client, org_keys["am"], get_settings().broker_organisation)
    r = post(manager, broker, "cles", label="outil interne", role="account_manager")
    key = secret_of(r.text, "new-key")
    orders = app_client.get("/v1/organisations", headers=auth(key))
    assert orders.status_code == 200  # an account manager's key: every organisation
    assert '<option value="client"' not in manager.get(page_of(broker)).text


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "locale": "fr-FR", "viewport": LAPTOP}


def _shots(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=folder / f"{name}.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=folder / f"{name}-phone.png", full_page=True)
    page.set_viewport_size(LAPTOP)


def test_an_account_manager_sets_an_organisation_in_a_browser(
    site: str,  # noqa: F811
    page: Page,
    tmp_path: Path,
) -> None:
    add_user("reglages@courtier.test", get_settings().broker_organisation, Role.account_manager)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto(site + "/")
    page.get_by_label("Adresse e-mail").fill("reglages@courtier.test")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.get_by_role("link", name="Organisations").click()
    expect(page.get_by_test_id("organisation-row")).to_have_count(3)
    accessible(page, site, "organisations")
    _shots(page, tmp_path, "organisations")

    page.get_by_test_id("organisation-link").filter(has_text="Acme").click()
    page.get_by_label("Numéro de TVA intracommunautaire").fill("12345")
    page.get_by_test_id("terms-submit").click()
    expect(page.get_by_test_id("error-summary")).to_contain_text("numéro de TVA")
    accessible(page, site, "terms refused")
    _shots(page, tmp_path, "terms-refused")

    page.get_by_label("Palier 1 : prix par contact en euros hors taxes").fill("0,2")
    page.get_by_label("Messages", exact=True).fill("25000")
    page.get_by_test_id("grid-preview").click()
    expect(page.get_by_test_id("preview-row")).to_have_count(3)
    page.get_by_label("Libellé (facultatif)").fill("CRM maison")
    page.get_by_test_id("key-submit").click()
    expect(page.get_by_test_id("new-key")).to_have_text(re.compile(r"^rk_"))
    accessible(page, site, "organisation")
    _shots(page, tmp_path, "organisation")
    page.get_by_test_id("grid-preview").click()  # the key is gone from the next page
    expect(page.get_by_test_id("new-key")).to_have_count(0)
    expect(page.get_by_test_id("preview-row")).to_have_count(2)  # the stored grid, 10k and 50k
    _shots(page, tmp_path, "preview")

    add_user("depart@acme.test")  # a leaver, disabled from the people's table
    page.reload()
    leaver = page.get_by_test_id("person-row").filter(has_text="depart@acme.test")
    leaver.get_by_test_id("person-disable").click()
    expect(page.get_by_test_id("person-row").filter(has_text="depart@acme.test")).to_contain_text(
        "désactivé le"
    )
    accessible(page, site, "person disabled")
    _shots(page, tmp_path, "person-disabled")
    assert refused == []
