"""Checking a draft message through the HTTP API: templates refused before they are rendered."""

from __future__ import annotations

import pytest

from tests.conftest import ScanningClient, auth
from tests.rental.test_messages import NOT_ALLOWED


@pytest.mark.parametrize("message", NOT_ALLOWED)
def test_templates_beyond_plain_variables_are_a_clear_422(
    app_client: ScanningClient, org_keys: dict[str, str], message: str
) -> None:
    r = app_client.post(
        "/v1/messages/check", json={"message": message}, headers=auth(org_keys["acme"])
    )
    assert r.status_code == 422, r.text[:200]
    assert r.json()["error"] == "invalid_message"
    assert "only text and the variables {{ civilite }}" in r.json()["detail"]
    assert "zqmarker" not in r.text


def test_the_variables_are_shown_at_their_longest(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    r = app_client.post(
        "/v1/messages/check",
        json={"message": "Bonjour {{ civilite }}, -20% chez ACME"},
        headers=auth(org_keys["acme"]),
    )
    assert r.status_code == 200, r.text
    assert r.json()["metro"]["preview"].startswith("Bonjour Madame, Monsieur, -20% chez ACME STOP")


def test_a_message_longer_than_allowed_is_refused_as_typed(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    r = app_client.post(
        "/v1/messages/check", json={"message": "a" * 2001}, headers=auth(org_keys["acme"])
    )
    assert r.status_code == 422
