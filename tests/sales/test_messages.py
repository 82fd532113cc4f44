from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

import pytest

from kit.settings import Settings, get_settings
from sales.messages.exceptions import InvalidMessage, InvalidSender
from sales.messages.service import (
    CIVILITY,
    MAX_MESSAGE_LENGTH,
    VARIABLES,
    check_message,
    check_sender,
    compose,
    measure,
    mentions,
    stop_link,
)
from tests.factories import LONG_STOP_LINK_BASE, overseas_at_the_limit

# Template bombs: megabytes once rendered (the sandbox rendered them).
BOMBS = ["Bonjour {{ civilite * 100000 }}", "Bonjour {{ civilite * 400000 }}"]
# Constructs a template may not use, some with a marker that must not come back in the error.
NOT_ALLOWED = [
    *BOMBS,
    "Bonjour {{ civilite ~ civilite }}",
    "{{ 7*7 }}",
    "{{ civilite.format }}",  # rendered a function's address
    "{{ civilite.upper }}",
    "{{ civilite.zqmarker }}",
    "{{ civilite['zqmarker'] }}",
    "{{ civilite[0] }}",
    "{{ civilite|upper }}",
    "{{ civilite|zqmarker }}",
    "{{ civilite() }}",
    "{{ civilite.upper() }}",
    "{{ civilite is defined }}",
    "{{ 'zqmarker' }}",
    "{{ civilite if civilite else 'zqmarker' }}",
    "{% for c in civilite %}{{ c }}{% endfor %}",
    "{% set zqmarker = civilite %}{{ zqmarker }}",
    "{% if civilite %}Bonjour{% endif %}",
    "{% raw %}{{ zqmarker }}{% endraw %}",
    "{{ civilite.__class__.__mro__ }}",
    pytest.param("{{ " + "(" * 900 + "civilite" + ")" * 900 + " }}", id="deep-nesting"),
]


def traced(call: Callable[[], object]) -> tuple[int, int]:
    """Memory (bytes) still held after `call`, and at its peak."""
    gc.collect()
    tracemalloc.start()
    try:
        call()
        gc.collect()
        return tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()


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
    assert checked.full_text.endswith(
        f"STOP au {s.messages.stop_short_code} {s.messages.source_mention}"
    )
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
    assert templated.characters == plain.characters + len(VARIABLES["civilite"])


@pytest.mark.parametrize("sex", [*CIVILITY, "?"])
def test_no_recipient_receives_more_than_was_measured(sex: str) -> None:
    text = "{{ civilite }}, {{ civility }}: -20% chez ACME"
    for metropolitan in (True, False):
        sent = compose(text, sex, metropolitan, stop_link("abcdefgh"))
        checked = check_message(text, metropolitan)
        assert measure(sent).characters <= checked.characters


@pytest.mark.parametrize("base", [None, LONG_STOP_LINK_BASE])
def test_overseas_segments_checked_are_the_segments_sent_whatever_the_stop_link_base(
    settings: Callable[..., Settings], base: str | None
) -> None:
    if base is not None:
        settings(stop_link_base=base)
    text, sent = overseas_at_the_limit()
    checked = check_message(text, metropolitan=False)
    assert measure(sent).segments == 2
    assert checked.segments == measure(sent).segments
    assert checked.characters == measure(sent).characters


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("Bonjour {{ civilite }}", "Bonjour Madame"),
        ("Bonjour {{civility}}!", "Bonjour Madame!"),
        ("Bonjour {{- civilite -}} !", "BonjourMadame!"),
        ("{# relance #}Bonjour {{ civilite }}\n-20%\n", "Bonjour Madame\n-20%"),
        ("100% {promo} {{ civilite }}", "100% {promo} Madame"),
    ],
)
def test_plain_text_and_variables_are_rendered(text: str, sent: str) -> None:
    check_message(text)
    stop = mentions(True)
    assert compose(text, "F", metropolitan=True, stop_link=None) == f"{sent} {stop}"


@pytest.mark.parametrize("text", NOT_ALLOWED)
def test_only_plain_variables_no_expressions(text: str) -> None:
    with pytest.raises(InvalidMessage, match="no arithmetic, filters, attribute") as refused:
        check_message(text)
    assert "zqmarker" not in refused.value.detail


@pytest.mark.parametrize("text", BOMBS)
def test_a_template_bomb_is_refused_before_rendering(text: str) -> None:
    def check() -> None:
        with pytest.raises(InvalidMessage, match="no arithmetic"):
            check_message(text)

    _, peak = traced(check)
    assert peak < 500_000  # rendered, it would take megabytes


@pytest.mark.parametrize("text", [BOMBS[0], "{{ civilite.format }}"])
def test_dispatch_refuses_what_the_checks_refuse(text: str) -> None:
    with pytest.raises(InvalidMessage, match="no arithmetic"):
        compose(text, "F", metropolitan=True, stop_link=None)


def test_the_length_is_bounded_before_rendering() -> None:
    limit = get_settings().messages.max_segments
    # Short as typed, over the limit once every variable takes its longest value.
    text = "{{civilite}}" * (limit * 160 // len(VARIABLES["civilite"]) + 1)
    assert len(text) < MAX_MESSAGE_LENGTH
    with pytest.raises(InvalidMessage, match=f"the maximum is {limit}"):
        check_message(text)
    with pytest.raises(InvalidMessage, match=f"more than {MAX_MESSAGE_LENGTH} characters"):
        check_message("a" * (MAX_MESSAGE_LENGTH + 1))


def test_measuring_a_long_text_keeps_nothing() -> None:
    held, _ = traced(lambda: measure("a" * 200_000))
    assert held < 50_000  # the text measured is 200 kB


def test_errors_do_not_echo_the_template() -> None:
    for text in ("Bonjour {{ zqmarker }}", "Bonjour {{ zqmarker !", "{% zqmarker %}"):
        with pytest.raises(InvalidMessage) as refused:
            check_message(text)
        assert "zqmarker" not in refused.value.detail


def test_no_variable_inside_a_link() -> None:
    with pytest.raises(InvalidMessage, match="link may not contain a variable"):
        check_message("Votre offre: https://acme.example/o?c={{ civilite }}")
    with pytest.raises(InvalidMessage, match="link may not contain a variable"):
        check_message("Votre offre: www.{{civilite}}.example")
    with pytest.raises(InvalidMessage, match="link may not contain a variable"):
        check_message("Votre offre: https://acme.example/o?c= {{- civilite }}")  # eats the space
    check_message("Votre offre: https://acme.example/offre {{ civilite }}")


def test_malformed_templates_are_refused() -> None:
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
