"""The public rights page: a person proves their number with the code the simulated carrier
received, reads their record, objects and asks for a correction; in French, and in English;
a form without its token is refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from kit import clock
from kit.db import unit_of_work
from kit.settings import get_settings
from sales.accounts.models import Role
from subjects import flows, service
from subjects.models import RequestKind
from subjects.repository import RequestRepository
from tests.conftest import ScanningClient
from tests.web.conftest import accessible, add_user, csrf_of, sign_in

Browser = Callable[..., ScanningClient]
CODE = re.compile(r"\b(\d{6})\b")
CHALLENGE = re.compile(r'name="challenge" value="([^"]+)"')


def last_code() -> str:
    text = (get_settings().home / "simulator" / "codes.log").read_text().splitlines()[-1]
    found = CODE.search(text)
    assert found is not None
    return found[1]


def test_a_person_reads_their_record_and_objects(visitor: Browser, base_numbers: list[str]) -> None:
    browser = visitor()
    page = browser.get("/droits")
    assert page.status_code == 200
    assert "Votre numéro de mobile" in page.text
    asked = browser.post(
        "/droits/code", data={"csrf_token": csrf_of(page.text), "number": base_numbers[6]}
    )
    assert asked.status_code == 200, asked.text
    assert "Si ce numéro figure dans notre base" in asked.text
    flows.send_codes(clock.now())
    challenge = CHALLENGE.search(asked.text)
    assert challenge is not None
    wrong = browser.post(
        "/droits/verification",
        data={"csrf_token": csrf_of(asked.text), "challenge": challenge[1], "code": "00000x"},
    )
    assert wrong.status_code == 422
    assert "Code incorrect" in wrong.text
    right = browser.post(
        "/droits/verification",
        data={"csrf_token": csrf_of(wrong.text), "challenge": challenge[1], "code": last_code()},
    )
    assert right.status_code == 303
    assert right.headers["location"] == "/droits/dossier"
    record = browser.get("/droits/dossier")
    assert "Référence de la preuve" in record.text
    assert "PRF-" in record.text
    done = browser.post("/droits/dossier/opposition", data={"csrf_token": csrf_of(record.text)})
    assert done.headers["location"] == "/droits/dossier?fait=opposition"
    after = browser.get(done.headers["location"])
    assert "Ce choix est définitif" in after.text
    assert 'data-testid="rights-opted-out"' in after.text
    empty = browser.post("/droits/dossier/demande", data={"csrf_token": csrf_of(after.text)})
    assert empty.status_code == 422
    assert "Écrivez ce qu" in empty.text
    english = browser.get("/droits/dossier", headers={"Accept-Language": "en"})
    assert "What we hold about your number" in english.text
    assert browser.post("/droits/fin").status_code == 303
    assert browser.get("/droits/dossier").headers["location"] == "/droits"


def test_a_form_without_its_token_is_refused(visitor: Browser, base_numbers: list[str]) -> None:
    refused = visitor().post("/droits/code", data={"number": base_numbers[7]})
    assert refused.status_code == 403
    assert "Ce formulaire a expiré" in refused.text


def test_staff_see_a_request_with_its_deadline_and_close_it(
    visitor: Browser, base_numbers: list[str]
) -> None:
    with unit_of_work() as session:
        made = service.ask_human(
            session,
            service.number_hmac(base_numbers[8]),
            RequestKind.rectification,
            "Mon code postal a changé.",
            clock.now(),
        )
        request_id = made.id
    add_user("droits@courtier.test", get_settings().broker_organisation, Role.account_manager)
    staff = sign_in(visitor(), "droits@courtier.test")
    queue = staff.get("/app/gestion")
    assert f"Demande n° {request_id}" in queue.text
    assert "Mon code postal a changé." in queue.text
    assert "30 jours restants" in queue.text or "29 jours restants" in queue.text
    path = f"/app/gestion/droits/{request_id}/reponse"
    empty = staff.post(path, data={"csrf_token": csrf_of(queue.text), "answer": " "})
    assert empty.status_code == 422
    assert "Écrivez la réponse faite à la personne." in empty.text
    done = staff.post(path, data={"csrf_token": csrf_of(queue.text), "answer": "Corrigé."})
    assert done.status_code == 303
    after = staff.get(done.headers["location"])
    assert "Réponse enregistrée" in after.text
    assert f"Demande n° {request_id}" not in after.text
    with unit_of_work() as session:
        actions = [a.action for a in RequestRepository(session).actions(request_id)]
    assert actions == ["received", "answered"]


def test_the_rights_pages_in_a_browser(
    site: str, page: Page, tmp_path: Path, base_numbers: list[str]
) -> None:
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto(site + "/droits")
    accessible(page, site, "rights")
    page.get_by_label("Votre numéro de mobile").fill(base_numbers[9])
    page.get_by_test_id("rights-ask").click()
    expect(page.get_by_test_id("rights-sent")).to_be_visible()
    flows.send_codes(clock.now())
    page.get_by_label("Code reçu par SMS").fill(last_code())
    page.screenshot(path=tmp_path / "rights-code.png", full_page=True)
    page.get_by_test_id("rights-verify").click()
    expect(page).to_have_url(site + "/droits/dossier")
    expect(page.get_by_test_id("rights-consent")).to_contain_text("PRF-")
    accessible(page, site, "rights-record")
    page.screenshot(path=tmp_path / "rights-record.png", full_page=True)
    page.get_by_test_id("rights-erase").click()
    expect(page.get_by_test_id("rights-done")).to_contain_text("prochaine mise à jour")
    expect(page.get_by_test_id("rights-erasure")).to_be_visible()
    page.screenshot(path=tmp_path / "rights-erased.png", full_page=True)
    assert not refused
