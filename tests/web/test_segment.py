"""The segment builder: the count a marketer sees is the API's quote, budget and privacy
included."""

from __future__ import annotations

import re
from collections.abc import Callable

from kit.settings import Settings
from tests.conftest import ScanningClient, auth
from tests.web.conftest import csrf_of

NNBSP = "\u202f"


def _shown(html: str) -> str:
    found = re.search(r'data-testid="live-count">([^<]*)<', html)
    assert found, "no live count in the page"
    return found.group(1)


def test_signing_in_lands_on_the_builder_with_the_whole_base_counted(
    marketer: ScanningClient,
) -> None:
    r = marketer.get("/")
    assert r.status_code == 303
    assert r.headers["location"] == "/app/segment"
    page = marketer.get("/app/segment")
    assert page.status_code == 200
    # Sent before its count (bench/web.py: its first paint), which the script asks at once.
    assert _shown(page.text) == "…"
    assert "Cliquez sur « Compter »" in page.text  # what to do without script
    for label in ("Sexe", "Âge", "Régions", "Départements", "Catégorie socioprofessionnelle"):
        assert label in page.text
    assert 'src="/static/segment.js"' in page.text
    whole = marketer.post("/app/segment/count", data={"csrf_token": csrf_of(page.text)})
    assert re.fullmatch(r"\d{1,3}(\u202f\d{3})*", _shown(whole.text))
    assert "Prix estimé" in whole.text


def test_the_live_count_is_the_apis_shown_count(
    marketer: ScanningClient, org_keys: dict[str, str]
) -> None:
    token = csrf_of(marketer.get("/app/segment").text)
    form = {
        "csrf_token": token,
        "sex": "F",
        "age_min": "25",
        "age_max": "45",
        "departments": ["06", "83"],
    }
    r = marketer.post("/app/segment/count", data=form)
    assert r.status_code == 200
    assert "<html" not in r.text  # the panel alone
    api = marketer.post(
        "/v1/quotes",
        json={"sex": ["F"], "age": {"min": 25, "max": 45}, "departments": ["06", "83"]},
        headers=auth(org_keys["acme"]),
    ).json()
    assert _shown(r.text).replace(NNBSP, "") == str(api["shown_count"])

    # Without script, the form posts the whole page, which keeps the ticks.
    page = marketer.post("/app/segment", data=form)
    assert page.status_code == 200
    assert "<html" in page.text
    assert _shown(page.text).replace(NNBSP, "") == str(api["shown_count"])
    assert re.search(r'value="06" checked', page.text)


def test_a_small_segment_says_fewer_than_the_minimum_and_why(marketer: ScanningClient) -> None:
    token = csrf_of(marketer.get("/app/segment").text)
    form = {"csrf_token": token, "sex": "M", "age_min": "104", "departments": "48"}
    r = marketer.post("/app/segment/count", data=form)
    assert r.status_code == 200
    assert _shown(r.text) == "moins de 100"
    assert "vie privée" in r.text
    assert "ne peut pas être commandé" in r.text
    assert "Prix" not in r.text


def test_the_pages_spend_the_organisations_quote_budget(
    marketer: ScanningClient, settings: Callable[..., Settings], org_keys: dict[str, str]
) -> None:
    settings(daily_quote_budget=2)
    token = csrf_of(marketer.get("/app/segment").text)  # no quote: the page comes uncounted
    assert marketer.post("/v1/quotes", json={}, headers=auth(org_keys["acme"])).status_code == 201
    r = marketer.post("/app/segment/count", data={"csrf_token": token})  # the whole base
    assert _shown(r.text).replace(NNBSP, "").isdigit()
    r = marketer.post("/app/segment/count", data={"csrf_token": token, "sex": "F"})
    assert _shown(r.text) == "—"
    assert "comptages du jour de votre organisation est atteint" in r.text


def test_wrong_criteria_are_said_next_to_their_field(marketer: ScanningClient) -> None:
    token = csrf_of(marketer.get("/app/segment").text)
    r = marketer.post("/app/segment", data={"csrf_token": token, "age_min": "60", "age_max": "30"})
    assert r.status_code == 422
    assert "Il y a un problème" in r.text
    assert 'href="#age_max"' in r.text
    assert "inversez-les" in r.text
    r = marketer.post("/app/segment/count", data={"csrf_token": token, "regions": "<b>zz</b>"})
    assert r.status_code == 422
    assert "<b>zz" not in r.text
    assert "rechargez la page" in r.text
