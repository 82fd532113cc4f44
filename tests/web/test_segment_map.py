"""The segment builder's map, charts, communes, radius, postcodes and exclusions: what the page
shows is the API's quote for the same criteria, hidden cells included, and what people type
wrong is said next to its field."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from kit import clock
from kit.settings import Settings
from segmentation import reach, runtime
from segmentation.criteria import Criteria
from tests.conftest import ScanningClient, auth
from tests.web.conftest import csrf_of
from web.segment_views import HIDDEN, HIDDEN_WHY
from web.templating import number

BREAKDOWNS = "region,department,age_band,sex"
CELL = re.compile(r'<li data-code="([^"]+)" data-css="dept--([a-z0-9]+)" data-label="([^"]*)"')
NARROW = {"sex": ["M"], "age": {"min": 30, "max": 40}, "regions": ["76", "93"]}
NARROW_FORM = {"sex": "M", "age_min": "30", "age_max": "40", "regions": ["76", "93"]}


def _form(client: ScanningClient, **fields: Any) -> dict[str, Any]:
    return {"csrf_token": csrf_of(client.get("/app/segment").text), **fields}


def _api(client: ScanningClient, key: str, criteria: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/v1/quotes?breakdowns={BREAKDOWNS}", json=criteria, headers=auth(key))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _shown(text: str) -> str:
    found = re.search(r'data-testid="live-count">([^<]*)<', text)
    assert found, "no live count"
    return found.group(1).replace("\u202f", "")


def _cells(text: str) -> dict[str, tuple[str, str]]:
    """The map's cells of a live answer: code -> (colour class, accessible name)."""
    return {code: (css, html.unescape(label)) for code, css, label in CELL.findall(text)}


def _error(text: str, name: str) -> str:
    """The error said next to a field (the page) or for it (the live answer)."""
    found = re.search(rf'data-error-for="{name}">([^<]+)<', text) or re.search(
        rf'<p data-for="{name}">([^<]+)<', text
    )
    assert found, f"no error next to {name}"
    return html.unescape(found.group(1))


def test_the_maps_cells_are_the_apis_department_cells(
    marketer: ScanningClient, org_keys: dict[str, str]
) -> None:
    r = marketer.post("/app/segment/count", data=_form(marketer, **NARROW_FORM))
    assert r.status_code == 200
    api = _api(marketer, org_keys["acme"], NARROW)
    reached = reach.departments(Criteria.model_validate(NARROW))
    cells = _cells(r.text)
    assert len(cells) == 101
    shown = hidden = outside = 0
    for cell in api["breakdowns"]["department"]:
        css, label = cells[cell["value"]]
        if cell["count"] is not None:
            shown += 1
            assert re.fullmatch(r"c[1-5]", css)
            assert label.endswith(f": {number(cell['count'])} personnes")
        elif cell["value"] in reached:
            hidden += 1
            assert css == "hidden", cell
            name = label.split(" : ")[0]
            assert label == f"{name} : {HIDDEN} ({HIDDEN_WHY})"  # no number of its own
        else:
            outside += 1
            assert css == "outside", cell  # known empty from the criteria alone
    assert min(shown, hidden, outside) > 0, (shown, hidden, outside)
    # Some hidden cells do hold people: the page knows nothing of them.
    exact = runtime.current().count_fresh(
        Criteria.model_validate(NARROW), clock.now(), ("department",)
    )
    hidden_cells = [c["value"] for c in api["breakdowns"]["department"] if c["count"] is None]
    assert any(exact.breakdowns["department"].get(code, 0) for code in hidden_cells)


def test_the_charts_are_the_apis_cells_hidden_ones_hatched(
    marketer: ScanningClient, org_keys: dict[str, str]
) -> None:
    page = marketer.post("/app/segment", data=_form(marketer, departments=["05", "48"]))
    api = _api(marketer, org_keys["acme"], {"departments": ["05", "48"]})
    for key in ("age_band", "sex", "region"):
        chart = page.text.split(f'data-chart="{key}"')[1].split("</table>")[0]
        values = re.findall(r'class="chart__value">([^<]+)<', chart)
        reached = [c for c in api["breakdowns"][key] if c["count"] is not None]
        assert [v.replace("\u202f", "") for v in values if v != "masqué"] == [
            str(c["count"]) for c in reached
        ]
    ages = page.text.split('data-chart="age_band"')[1].split("</table>")[0]
    assert re.search(r"chart__row--hidden.*?bar--hidden.*?>masqué<", ages, re.S)
    regions = page.text.split('data-chart="region"')[1].split("</table>")[0]
    assert "Provence" in regions
    assert "Bretagne" not in regions
    assert "16 régions hors ciblage" in page.text
    page = marketer.post("/app/segment", data=_form(marketer, **NARROW_FORM))
    sexes = page.text.split('data-chart="sex"')[1].split("</table>")[0]
    assert "Hommes" in sexes
    assert "Femmes" not in sexes


def test_the_map_follows_the_ticked_departments(
    marketer: ScanningClient, org_keys: dict[str, str]
) -> None:
    page = marketer.post("/app/segment", data=_form(marketer, departments=["33", "40"]))
    assert page.status_code == 200
    ticked = re.findall(r'data-code="([^"]+)" role="checkbox" aria-checked="true"', page.text)
    assert ticked == ["33", "40"]
    assert 'value="33" checked' in page.text
    api = _api(marketer, org_keys["acme"], {"departments": ["33", "40"]})
    assert _shown(page.text) == str(api["shown_count"])
    # Unticked again (the map's second click): the whole base.
    r = marketer.post("/app/segment/count", data=_form(marketer, departments=["40"]))
    assert 'data-code="33" data-css="dept--outside"' in r.text
    assert re.search(r'data-code="40" data-css="dept--c\d"[^>]*data-checked="true"', r.text)
    assert _shown(r.text) == str(
        _api(marketer, org_keys["acme"], {"departments": ["40"]})["shown_count"]
    )


def test_the_map_is_keyboard_ready(marketer: ScanningClient) -> None:
    page = marketer.get("/app/segment").text
    shapes = re.findall(r'<(path|g) [^>]*data-code="([^"]+)" role="checkbox"[^>]*>', page)
    assert len(shapes) == 101
    codes = [c for _, c in shapes]
    assert {"2A", "2B", "971", "972", "973", "974", "976"} <= set(codes)
    names = re.findall(r'role="checkbox" aria-checked="false" aria-label="([^"]+)"', page)
    assert "Corse-du-Sud (2A) : " in html.unescape(names[codes.index("2A")])
    assert html.unescape(names[codes.index("974")]).startswith("La Réunion (974) : ")
    assert page.count('tabindex="0"') >= 1
    assert "CC BY 4.0" in page


def test_communes_are_found_as_one_types_and_the_input_is_escaped(
    marketer: ScanningClient, visitor: Callable[..., ScanningClient]
) -> None:
    r = marketer.get("/app/segment/communes", params={"q": "nice"})
    assert r.status_code == 200
    assert 'data-insee="06088"' in r.text
    assert "Nice" in r.text
    assert len(re.findall("search__pick", r.text)) <= 10
    r = marketer.get("/app/segment/communes", params={"q": "saint etienne"})  # as people type
    assert 'data-insee="42218"' in r.text
    r = marketer.get("/app/segment/communes", params={"q": "06000"})
    assert 'data-insee="06088"' in r.text
    r = marketer.get("/app/segment/communes", params={"q": "<script>alert(1)</script>"})
    assert r.status_code == 200
    assert "<script>" not in r.text
    assert "&lt;script&gt;" in r.text
    r = marketer.get("/app/segment/communes", params={"q": "{{ 7*7 }}"})
    assert "49" not in r.text
    assert visitor().get("/app/segment/communes", params={"q": "nice"}).status_code == 303


def test_a_commune_search_spends_no_quote(
    marketer: ScanningClient, settings: Callable[..., Settings]
) -> None:
    settings(daily_quote_budget=1)
    form = _form(marketer, sex="F")  # the page comes uncounted: no quote
    for q in ("ni", "nic", "nice", "nice 06"):
        assert marketer.get("/app/segment/communes", params={"q": q}).status_code == 200
    assert _shown(marketer.post("/app/segment/count", data=form).text).isdigit()


def test_communes_radius_postcodes_and_exclusions_count_as_the_api(
    marketer: ScanningClient, org_keys: dict[str, str]
) -> None:
    key = org_keys["acme"]
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"communes": ["06088", "13055"]}, {"communes": ["06088", "13055"]}),
        (
            {"radius_commune": "06088", "radius_km": "20"},
            {"radius": {"commune": "06088", "km": 20.0}},
        ),
        (
            {"radius_commune": "06088", "radius_km": "2,5"},
            {"radius": {"commune": "06088", "km": 2.5}},
        ),
        ({"postcodes": "06000, 06100;06200"}, {"postcodes": ["06000", "06100", "06200"]}),
        (
            {"departments": "06", "exclude_interests": "travel", "exclude_postcodes": "06000"},
            {"departments": ["06"], "exclude": {"interests": ["travel"], "postcodes": ["06000"]}},
        ),
    ]
    for fields, criteria in cases:
        r = marketer.post("/app/segment/count", data=_form(marketer, **fields))
        assert r.status_code == 200, (fields, r.text)
        assert _shown(r.text) == str(_api(marketer, key, criteria)["shown_count"]), fields

    # Without script, a search lists the communes to tick; ticked, they are kept.
    page = marketer.post("/app/segment", data=_form(marketer, commune_search="nice"))
    assert re.search(r'name="communes" value="06088">', page.text)
    page = marketer.post("/app/segment", data=_form(marketer, communes="06088"))
    assert re.search(r'name="communes" value="06088" checked> <span>Nice \(06\)', page.text)


def test_wrong_postcodes_radius_and_exclusions_are_said_next_to_their_field(
    marketer: ScanningClient, base_numbers: list[str]
) -> None:
    cases = [
        ({"postcodes": "06000, 99999"}, "postcodes", "Code postal inconnu : 99999"),
        ({"exclude_postcodes": "1234"}, "exclude_postcodes", "Code postal inconnu : 1234"),
        ({"radius_km": "20"}, "radius_commune", "Choisissez la commune au centre du rayon"),
        ({"radius_commune": "06088"}, "radius_km", "autour de Nice (06)"),
        ({"radius_commune": "06088", "radius_km": "900"}, "radius_km", "limite de 200 km"),
        ({"radius_commune": "06088", "radius_km": "0"}, "radius_km", "plus de 0 km"),
        ({"radius_commune": "06088", "radius_km": "vingt"}, "radius_km", "par exemple 20"),
        ({"radius_commune": "99999", "radius_km": "5"}, "radius_commune", "Commune inconnue"),
        ({"communes": "<b>x</b>"}, "communes", "Commune inconnue"),
        ({"exclude_csp": "zz"}, "exclude_csp", "rechargez la page"),
    ]
    for fields, name, said in cases:
        page = marketer.post("/app/segment", data=_form(marketer, **fields))
        assert page.status_code == 422, fields
        assert f'href="#{name}"' in page.text
        assert f'id="{name}"' in page.text
        assert said in _error(page.text, name), (fields, _error(page.text, name))
        live = marketer.post("/app/segment/count", data=_form(marketer, **fields))
        assert live.status_code == 422
        assert said in _error(live.text, name)
        assert "<b>x" not in live.text
        assert "<b>x" not in page.text
    # A phone number typed by mistake is refused without being repeated.
    typed = "0" + base_numbers[0].removeprefix("+33")
    live = marketer.post("/app/segment/count", data=_form(marketer, postcodes=typed))
    assert "Code postal inconnu. Saisissez" in _error(live.text, "postcodes")
    assert typed not in live.text
