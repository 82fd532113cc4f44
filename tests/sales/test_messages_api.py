"""Checking a draft message through the HTTP API: templates refused before they are rendered."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kit.settings import Settings
from sales.messages.service import measure
from tests.conftest import ScanningClient, auth
from tests.factories import LONG_STOP_LINK_BASE, overseas_at_the_limit
from tests.sales.test_messages import NOT_ALLOWED


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


def test_overseas_segments_shown_are_those_sent_with_the_configured_stop_link(
    app_client: ScanningClient, org_keys: dict[str, str], settings: Callable[..., Settings]
) -> None:
    settings(stop_link_base=LONG_STOP_LINK_BASE)
    text, sent = overseas_at_the_limit()
    r = app_client.post(
        "/v1/messages/check", json={"message": text}, headers=auth(org_keys["acme"])
    )
    assert r.status_code == 200, r.text
    overseas = r.json()["overseas"]
    assert (overseas["segments"], overseas["characters"]) == (2, measure(sent).characters)
    assert len(overseas["preview"]) == len(sent)
