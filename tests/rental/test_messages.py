from __future__ import annotations

import pytest

from kit.settings import get_settings
from rental.messages.exceptions import InvalidMessage, InvalidSender
from rental.messages.service import check_message, check_sender, measure, mentions


@pytest.mark.parametrize(
    ("text", "encoding", "characters"),
    [
        ("Soldes ete: -20% chez ACME", "GSM-7", 26),
        ("é", "GSM-7", 1),  # in the GSM basic alphabet
        ("Ç", "GSM-7", 1),
        ("ê", "UCS-2", 1),  # not in it: the whole message becomes UCS-2
        ("ç", "UCS-2", 1),
        ("Fête des mères : -20% chez ACME", "UCS-2", 31),
        ("Prix: 10€", "GSM-7", 10),  # the euro sign is an extension character: two septets
        ("[promo]", "GSM-7", 9),
        ("Offre 🎁", "UCS-2", 8),  # an emoji is two UTF-16 units
    ],
)
def test_encoding_and_length(text: str, encoding: str, characters: int) -> None:
    m = measure(text)
    assert (m.encoding, m.characters) == (encoding, characters)


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),
        ("ê" * 70, 1),
        ("ê" * 71, 2),
        ("ê" * 134, 2),
        ("ê" * 135, 3),
    ],
)
def test_segments(text: str, segments: int) -> None:
    assert measure(text).segments == segments


def test_mentions_are_appended_counted_and_plain_gsm() -> None:
    s = get_settings()
    checked = check_message("Soldes chez ACME")
    assert checked.full_text.endswith(f"STOP au {s.stop_short_code} {s.source_mention}")
    assert checked.encoding == "GSM-7"
    assert checked.characters == len(checked.full_text)
    overseas = check_message("Soldes chez ACME", metropolitan=False)
    assert "STOP https://" in overseas.full_text
    assert overseas.characters > checked.characters
    assert measure(mentions(True)).encoding == measure(mentions(False)).encoding == "GSM-7"


def test_too_long_is_refused_with_the_numbers() -> None:
    with pytest.raises(InvalidMessage, match="maximum is 6"):
        check_message("a" * 153 * 6)


def test_empty_is_refused() -> None:
    with pytest.raises(InvalidMessage, match="empty"):
        check_message("   ")


@pytest.mark.parametrize("variable", ["phone", "prospect_id", "numero", "self", "cycler"])
def test_only_whitelisted_variables(variable: str) -> None:
    with pytest.raises(InvalidMessage, match="not available"):
        check_message(f"Bonjour {{{{ {variable} }}}}")


def test_whitelisted_variable_counts_at_its_longest() -> None:
    plain = check_message("Bonjour , -20% chez ACME")
    templated = check_message("Bonjour {{ civilite }}, -20% chez ACME")
    assert templated.characters == plain.characters + len("Mademoiselle")


def test_no_variable_inside_a_link() -> None:
    with pytest.raises(InvalidMessage, match="link may not contain a variable"):
        check_message("Votre offre: https://acme.example/o?c={{ civilite }}")
    check_message("Votre offre: https://acme.example/offre {{ civilite }}")


def test_sandbox_refuses_unsafe_templates() -> None:
    with pytest.raises(InvalidMessage):
        check_message("{{ civilite.__class__.__mro__ }}")
    with pytest.raises(InvalidMessage, match="malformed"):
        check_message("Bonjour {{ civilite")


@pytest.mark.parametrize("sender", ["ACME", "Acme2026", "abc", "B2B12345678"])
def test_valid_senders(sender: str) -> None:
    assert check_sender(sender) == sender


@pytest.mark.parametrize(
    ("sender", "why"),
    [
        ("12345", "at least one letter"),
        ("AC", "3 to 11"),
        ("ACME STORE", "no spaces"),
        ("Crédit", "no spaces or accents"),
        ("ACMEACMEACME", "3 to 11"),
        ("INFO", "generic"),
    ],
)
def test_invalid_senders(sender: str, why: str) -> None:
    with pytest.raises(InvalidSender, match=why):
        check_sender(sender)
