"""Exclusion files through the API: upload in every form, counts of lines (never a line),
the minimum size, another organisation's files, and their members left out of counts and
draws."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import phonenumbers
import pytest

from datasets import snapshot
from kit import clock, redisd
from kit.db import unit_of_work
from kit.settings import get_settings
from sales.exclusions import tasks
from sales.exclusions.ingest import e164
from sales.exclusions.service import salted_sha256
from segmentation import runtime
from segmentation.criteria import Criteria
from tests.conftest import ScanningClient, auth
from tests.exclusions import national, outsiders, people_of, upload
from tests.factories import create_order, create_quote, order_body


@pytest.fixture(scope="module")
def dept_35(base: snapshot.Snapshot) -> Any:
    return people_of(base, "35")


def _quote(client: ScanningClient, key: str, criteria: dict[str, Any]) -> Any:
    return client.post("/v1/quotes", json=criteria, headers=auth(key))


def test_an_upload_counts_its_lines_and_echoes_none(
    app_client: ScanningClient, org_keys: dict[str, str], dept_35: Any
) -> None:
    numbers = dept_35["e164"].to_list()[:150]
    garbage = ["not a number", "0123", "+33 6 12", "0x 00 0x"]
    lines = [national(n) for n in numbers[:75]] + numbers[75:] + numbers[:10] + garbage + [""]
    r = upload(app_client, org_keys["acme"], ["phone", *lines], name="clients 2026")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["lines"], body["accepted"], body["rejected"]) == (165, 150, 5)
    assert body["ready"] is True
    assert not any(g in r.text for g in garbage)
    listed = app_client.get("/v1/exclusion-files", headers=auth(org_keys["acme"])).json()
    assert [f["id"] for f in listed["items"]] == [body["id"]]
    # Another organisation sees nothing of it, and cannot use nor delete it.
    other = auth(org_keys["globex"])
    assert app_client.get("/v1/exclusion-files", headers=other).json()["items"] == []
    assert app_client.get(f"/v1/exclusion-files/{body['id']}", headers=other).status_code == 404
    assert app_client.delete(f"/v1/exclusion-files/{body['id']}", headers=other).status_code == 404
    r = _quote(app_client, org_keys["globex"], {"exclusion_files": [body["id"]]})
    assert r.status_code == 404
    assert r.json()["error"] == "exclusion_file_not_found"
    r = app_client.delete(f"/v1/exclusion-files/{body['id']}", headers=auth(org_keys["acme"]))
    assert r.status_code == 204
    assert app_client.get("/v1/exclusion-files", headers=auth(org_keys["acme"])).json() == {
        "items": []
    }


def test_a_file_under_the_minimum_is_refused(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """99 distinct numbers, however many times repeated: refused, nothing kept."""
    few = outsiders(99, seed=1)
    r = upload(app_client, org_keys["acme"], few * 3)
    assert r.status_code == 422
    assert r.json()["error"] == "exclusion_file_too_small"
    assert r.json()["accepted"] == 99
    listed = app_client.get("/v1/exclusion-files", headers=auth(org_keys["acme"])).json()
    assert listed["items"] == []


def test_a_csv_file_sent_as_multipart(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    rows = [f'"{n}";"Dupont";"2026-01-0{i % 9 + 1}"' for i, n in enumerate(outsiders(120, 2))]
    text = "\r\n".join(["telephone;nom;date", *rows]).encode()
    r = app_client.post(
        "/v1/exclusion-files",
        files={"file": ("clients.csv", text, "text/csv")},
        data={"note": "ignored"},
        headers=auth(org_keys["acme"]),
    )
    assert r.status_code == 201, r.text
    assert (r.json()["lines"], r.json()["accepted"], r.json()["rejected"]) == (121, 120, 1)
    r = app_client.post(
        "/v1/exclusion-files",
        content=b"{}",
        headers={**auth(org_keys["acme"]), "Content-Type": "application/json"},
    )
    assert r.status_code == 415


def test_members_leave_the_count_and_the_draw(
    app_client: ScanningClient, org_keys: dict[str, str], dept_35: Any
) -> None:
    """The file's people of the segment are neither counted nor drawn; the shown count moves
    by their weights only (the rule of every count)."""
    members = dept_35.head(300)
    r = upload(app_client, org_keys["acme"], members["e164"].to_list() + outsiders(50, 3))
    file_id = r.json()["id"]
    criteria = {"departments": ["35"]}
    plain = create_quote(app_client, org_keys["acme"], criteria)
    excluded = create_quote(
        app_client, org_keys["acme"], {**criteria, "exclusion_files": [file_id]}
    )
    seg = runtime.current()
    day = clock.today_paris()
    before = seg.engine.matching_ids(Criteria.model_validate(criteria), day)
    with unit_of_work() as session:
        seg.load_exclusions(session, Criteria.model_validate({"exclusion_files": [file_id]}))
    after = seg.engine.matching_ids(
        Criteria.model_validate({**criteria, "exclusion_files": [file_id]}), day
    )
    gone = np.intersect1d(before, members["prospect_id"].to_numpy())
    assert len(gone) > 200  # most of them are eligible
    assert np.array_equal(np.sort(after), np.setdiff1d(before, gone))
    weight = seg.engine.person_sample.sampled(gone) / seg.engine.person_sample.rate
    assert abs((plain["shown_count"] - excluded["shown_count"]) - weight) <= 10
    # An order on the excluded quote draws none of them.
    order = create_order(app_client, org_keys["acme"], excluded, quantity=200)
    with unit_of_work() as session:
        drawn = seg.sample(
            session,
            Criteria.model_validate({**criteria, "exclusion_files": [file_id]}),
            200,
            order["id"],
            clock.now(),
        )
    assert len(drawn) == 200
    assert not np.isin(drawn, gone).any()
    # A file an unsent order leaves out cannot be deleted.
    r = app_client.delete(f"/v1/exclusion-files/{file_id}", headers=auth(org_keys["acme"]))
    assert r.status_code == 409


def test_replacing_a_file_changes_who_is_left_out(
    app_client: ScanningClient, org_keys: dict[str, str], dept_35: Any
) -> None:
    first = dept_35.head(150)
    second = dept_35.slice(150, 150)
    file_id = upload(app_client, org_keys["acme"], first["e164"].to_list()).json()["id"]
    criteria = Criteria.model_validate({"departments": ["35"], "exclusion_files": [file_id]})
    seg = runtime.current()

    everyone = seg.engine.matching_ids(
        Criteria.model_validate({"departments": ["35"]}), clock.today_paris()
    )

    def left_out() -> np.ndarray:
        with unit_of_work() as session:
            seg.load_exclusions(session, criteria)
        return np.setdiff1d(everyone, seg.engine.matching_ids(criteria, clock.today_paris()))

    assert set(first["prospect_id"].to_list()) >= set(left_out().tolist())
    r = app_client.put(
        f"/v1/exclusion-files/{file_id}",
        content="\n".join(second["e164"].to_list()).encode(),
        headers={**auth(org_keys["acme"]), "Content-Type": "text/plain"},
    )
    assert r.status_code == 200, r.text
    out = set(left_out().tolist())
    assert out
    assert out <= set(second["prospect_id"].to_list())


def test_a_file_hashed_by_the_customer(
    app_client: ScanningClient, org_keys: dict[str, str], dept_35: Any
) -> None:
    """SHA-256 with the organisation's salt: usable once the worker has matched it."""
    salt = app_client.get("/v1/exclusion-files/salt", headers=auth(org_keys["acme"])).json()
    members = dept_35.head(150)
    hashed = [salted_sha256(salt["salt"], n.encode()).hex() for n in members["e164"].to_list()]
    r = upload(app_client, org_keys["acme"], [*hashed, "zz"], form="sha256")
    assert r.status_code == 201, r.text
    assert (r.json()["accepted"], r.json()["rejected"], r.json()["ready"]) == (150, 1, False)
    file_id = r.json()["id"]
    criteria = {"departments": ["35"], "exclusion_files": [file_id]}
    r = _quote(app_client, org_keys["acme"], criteria)
    assert r.status_code == 409
    assert r.json()["error"] == "exclusion_file_not_ready"
    redisd.client().set(tasks.MATCHING, "another-worker")  # another worker's pass is running
    assert tasks.match_pending() == 0  # this one does not start the same pass
    redisd.client().delete(tasks.MATCHING)  # it ended
    assert tasks.match_pending() == 1
    got = app_client.get(f"/v1/exclusion-files/{file_id}", headers=auth(org_keys["acme"]))
    assert got.json()["ready"] is True
    assert _quote(app_client, org_keys["acme"], criteria).status_code == 201
    kept = runtime.current().engine.matching_ids(
        Criteria.model_validate(criteria), clock.today_paris()
    )
    assert not np.isin(kept, members["prospect_id"].to_numpy()).any()


def test_the_fast_normalisation_is_phonenumbers_own() -> None:
    """French numbers in their usual forms skip phonenumbers.parse: the same verdict and the
    same E.164 on random digits."""
    rng = np.random.default_rng(5)
    for digits in rng.integers(0, 10, size=(3000, 9)):
        d = "".join(map(str, digits))
        for text in (f"0{d}", f"+33{d}", f"0033 {d}", f"0{d[0]} {d[1:3]}.{d[3:]}"):
            assert e164(text.encode(), "FR") == _by_phonenumbers(text), text


def _by_phonenumbers(text: str) -> bytes | None:
    """phonenumbers' own E.164: metropolitan France, else (a national number) the first
    overseas department where it is valid."""
    national = text.startswith("0") and not text.startswith("00")
    for region in ("FR", "RE", "GP", "MQ", "GF", "YT") if national else ("FR",):
        try:
            parsed = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).encode()
    return None


def test_overseas_numbers_in_national_form_are_read_as_theirs(
    app_client: ScanningClient, org_keys: dict[str, str], base: snapshot.Snapshot
) -> None:
    """A customer's file lists its Reunion customers as 0692... like everyone else: they are
    Reunion's numbers (+262 692...), accepted and left out of a count on Reunion."""
    reunion = people_of(base, "974").head(150)
    assert reunion["e164"].str.starts_with("+262").all()
    lines = ["0" + n[4:] for n in reunion["e164"].to_list()]
    r = upload(app_client, org_keys["acme"], lines)
    assert r.status_code == 201, r.text
    assert (r.json()["accepted"], r.json()["rejected"]) == (150, 0)
    file_id = r.json()["id"]
    seg = runtime.current()
    criteria = Criteria.model_validate({"departments": ["974"], "exclusion_files": [file_id]})
    with unit_of_work() as session:
        seg.load_exclusions(session, criteria)
    kept = seg.engine.matching_ids(criteria, clock.today_paris())
    assert len(kept) > 0
    assert not np.isin(kept, reunion["prospect_id"].to_numpy()).any()


def test_an_order_from_a_quote_whose_file_was_deleted_is_refused_at_once(
    app_client: ScanningClient, org_keys: dict[str, str], dept_35: Any
) -> None:
    """Deleting a file no order relies on yet is allowed; an order from a quote naming it is
    then refused when it is placed (409, what to do), not later at the deposit."""
    key = org_keys["acme"]
    file_id = upload(app_client, key, dept_35["e164"].to_list()[:150]).json()["id"]
    quote = create_quote(app_client, key, {"departments": ["35"], "exclusion_files": [file_id]})
    assert app_client.delete(f"/v1/exclusion-files/{file_id}", headers=auth(key)).status_code == 204
    r = app_client.post("/v1/orders", json=order_body(quote, quantity=200), headers=auth(key))
    assert r.status_code == 409
    assert r.json()["error"] == "exclusion_file_deleted"
    assert r.json()["exclusion_files"] == [file_id]
    assert "ask for a new quote" in r.json()["detail"]
    # The same segment quoted again without it is ordered as usual.
    again = create_quote(app_client, key, {"departments": ["35"]})
    assert create_order(app_client, key, again, quantity=200)["status"] == "awaiting_deposit"


def test_uploads_have_a_gate_of_their_own(
    org_keys: dict[str, str], dept_35: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload streams for up to a minute: it holds a slot of the uploads' gate, not one of
    everything else's. While one streams, the API answers; an upload beyond
    RENTAL_UPLOAD_CONCURRENCY is told at once when to come back."""
    from rental.app import create_app

    monkeypatch.setenv("RENTAL_UPLOAD_CONCURRENCY", "1")
    monkeypatch.setenv("RENTAL_API_CONCURRENCY", "1")
    get_settings.cache_clear()
    app = create_app()  # no lifespan: the fixture's app migrated this test's database
    lines = [n.encode() for n in dept_35.head(150)["e164"].to_list()]
    headers = {**auth(org_keys["acme"]), "Content-Type": "text/plain"}

    async def scene() -> tuple[httpx.Response, ...]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            more = asyncio.Event()

            async def slow() -> AsyncIterator[bytes]:
                yield b"\n".join(lines[:75]) + b"\n"
                await more.wait()  # the customer's line is slow
                yield b"\n".join(lines[75:])

            first = asyncio.create_task(
                client.post("/v1/exclusion-files", content=slow(), headers=headers)
            )
            await asyncio.sleep(0.5)  # the first upload is streaming
            listing = await client.get("/v1/exclusion-files", headers=headers)
            second = await client.post(
                "/v1/exclusion-files", content=b"\n".join(lines), headers=headers
            )
            more.set()
            return listing, second, await first

    try:  # a thread of its own: a browser test may have left an event loop in this one
        with ThreadPoolExecutor(1) as pool:
            listing, second, first = pool.submit(lambda: asyncio.run(scene())).result()
    finally:
        monkeypatch.delenv("RENTAL_UPLOAD_CONCURRENCY")
        monkeypatch.delenv("RENTAL_API_CONCURRENCY")
        get_settings.cache_clear()
    assert listing.status_code == 200  # the other gates are free
    assert second.status_code == 503
    assert int(second.headers["Retry-After"]) >= 1
    assert first.status_code == 201, first.text
    assert first.json()["accepted"] == 150
