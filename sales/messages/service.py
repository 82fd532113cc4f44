"""Message rules checked at order time: sender name, mentions, encoding, segments, templates.

- GSM 03.38 when every character is in the GSM alphabet (extension characters such as EUR or
  '[' take two septets), otherwise UCS-2 for the whole message (counted in UTF-16 units).
- One segment holds 160 septets or 70 UCS-2 units; a concatenated message 153 or 67 per part.
- The STOP mention is appended automatically and counted: "STOP au <short code>" for
  metropolitan numbers, a personal STOP link elsewhere (overseas operators may not carry
  replies), then the short source mention. Both are plain GSM text, so they never change the
  encoding the customer's own text implies.
- A template is plain text and whitelisted variables written alone (`{{ civilite }}`), nothing
  else: no arithmetic, filters, attribute access, calls or statements. Jinja2 only parses it;
  the parsed tree is checked and then rendered here by substitution, never evaluated, so its
  rendered length is known (each variable has a longest value) before anything is rendered.
  A variable inside a link (a per-recipient token the customer could read back from the
  link's visits) is refused. Order checks and dispatch go through the same `template_of`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
from jinja2 import Environment, TemplateSyntaxError, nodes

from datasets.geography import METRO, OVERSEAS
from kit.settings import MessagesSettings, get_settings
from sales.messages.exceptions import InvalidMessage, InvalidSender

GSM7, UCS2 = "GSM-7", "UCS-2"  # the two encodings, as orders and carriers name them
GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67
# A message as typed, variables and all (the API's schemas take the same bound).
MAX_MESSAGE_LENGTH = 2000
CIVILITY = {"F": "Madame", "M": "Monsieur"}
CIVILITY_UNKNOWN = "Madame, Monsieur"  # a prospect whose sex is not recorded
# What a template may use, with the longest value each can take (lengths are checked on it).
VARIABLES = {
    name: max([*CIVILITY.values(), CIVILITY_UNKNOWN], key=len) for name in ("civilite", "civility")
}
ONLY_VARIABLES = (
    "a message may contain only text and the variables {{ civilite }} or {{ civility }}, "
    "each on its own between the braces: no arithmetic, filters, attribute or item access, "
    "calls, tests or {% %} statements"
)
URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
SENDER = re.compile(r"[A-Za-z0-9]{3,11}")
STOP_TOKEN_LENGTH = 8
# measure() caches only texts this short: max_segments is at most 10, so every message that
# fits is shorter, and the cache never holds a long string.
CACHED_UP_TO = 10 * GSM_SINGLE


def part_size(encoding: str) -> int:
    """Characters (units) per part of a concatenated message in `encoding`."""
    return GSM_MULTI if encoding == GSM7 else UCS2_MULTI


@dataclass(frozen=True)
class Encoded:
    encoding: str  # GSM7 or UCS2
    characters: int  # septets (GSM-7) or UTF-16 units (UCS-2)
    segments: int


def parts_of(sizes: list[int], single: int, multi: int) -> list[int]:
    """Where a message splits into SMS parts, given each character's size in units (GSM-7
    septets: 2 for an escaped character; UCS-2: 2 for a surrogate pair): the index of each
    part's first character. One part up to `single` units; beyond, parts of at most `multi`
    units, never cutting a character. The carrier adapters split the same way, so the
    segments quoted and billed are the segments sent."""
    if sum(sizes) <= single:
        return [0]
    starts, used = [0], 0
    for i, size in enumerate(sizes):
        if used + size > multi:
            starts.append(i)
            used = 0
        used += size
    return starts


def measure(text: str) -> Encoded:
    """Encoding, length in units and segments of a text as sent."""
    return _measure_cached(text) if len(text) <= CACHED_UP_TO else _measure(text)


def _measure(text: str) -> Encoded:
    try:
        sizes = [len(c.encode("gsm03.38")) for c in text]
    except UnicodeEncodeError:
        sizes = [len(c.encode("utf-16-le")) // 2 for c in text]
        return Encoded(UCS2, sum(sizes), len(parts_of(sizes, UCS2_SINGLE, UCS2_MULTI)))
    return Encoded(GSM7, sum(sizes), len(parts_of(sizes, GSM_SINGLE, GSM_MULTI)))


# Carriers measure every message they send: a campaign has a few distinct texts per zone.
_measure_cached = lru_cache(maxsize=4096)(_measure)


def check_sender(sender: str) -> str:
    s = get_settings()
    if not SENDER.fullmatch(sender) or not any(c.isalpha() for c in sender):
        raise InvalidSender(
            "the sender name must have 3 to 11 letters or digits (no spaces or accents), "
            "with at least one letter, e.g. 'ACME'"
        )
    if sender.lower() in {w.lower() for w in s.messages.blocked_senders}:
        raise InvalidSender("this sender is a generic name operators refuse: use your brand's name")
    return sender


@dataclass(frozen=True)
class Mentions:
    """What every message ends with, built from the messages settings: the STOP mention of
    the recipient's territory (the short code in metropolitan France, a personal link
    overseas), then the source mention."""

    settings: MessagesSettings

    def stop_link(self, token: str) -> str:
        """A recipient's personal STOP link, under the configured base."""
        return f"{self.settings.stop_link_base}{token}"

    def text(self, metropolitan: bool, stop_link: str | None) -> str:
        s = self.settings
        stop = f"STOP au {s.stop_short_code}" if metropolitan else f"STOP {stop_link}"
        return f"{stop} {s.source_mention}"

    def measured(self, metropolitan: bool) -> str:
        """The mentions as measured at order time: overseas, a STOP link of the length
        dispatch sends."""
        return self.text(metropolitan, self.stop_link("X" * STOP_TOKEN_LENGTH))

    def compose(self, text: str, sex: str, metropolitan: bool, stop_link: str | None) -> str:
        """The message one recipient receives: the template rendered with their variables,
        then the mentions. The same `template_of` as the order's checks: a template dispatch
        would refuse never renders either."""
        civility = CIVILITY.get(sex, CIVILITY_UNKNOWN)
        rendered = template_of(text).render(dict.fromkeys(VARIABLES, civility))
        return f"{rendered.rstrip()} {self.text(metropolitan, stop_link)}"


def configured_mentions() -> Mentions:
    """The mentions of the settings, read each time: what is measured is what is sent."""
    return Mentions(get_settings().messages)


def stop_link(token: str) -> str:
    """A recipient's personal STOP link, under the configured base."""
    return configured_mentions().stop_link(token)


def mentions(metropolitan: bool) -> str:
    """The mentions appended to every message; overseas, a STOP link of the length dispatch
    sends."""
    return configured_mentions().measured(metropolitan)


@dataclass(frozen=True)
class Template:
    """A checked message template: texts[0] + names[0] + texts[1] + ... + texts[-1], where
    every name is a whitelisted variable."""

    texts: tuple[str, ...]
    names: tuple[str, ...]

    def longest(self) -> int:
        """Characters of the rendering with every variable at its longest value."""
        return sum(map(len, self.texts)) + sum(len(VARIABLES[n]) for n in self.names)

    def render(self, values: Mapping[str, str]) -> str:
        out = [self.texts[0]]
        for name, text in zip(self.names, self.texts[1:], strict=True):
            out += (values[name], text)
        return "".join(out)

    def variable_in_link(self) -> bool:
        """Would a link run into a variable? Checked on the rendering, so that whitespace
        control (`{{- civilite }}` eats the space before it) cannot hide one."""
        pos, spans, out = len(self.texts[0]), [], [self.texts[0]]
        for name, text in zip(self.names, self.texts[1:], strict=True):
            value = VARIABLES[name]
            spans.append((pos, pos + len(value)))
            pos += len(value) + len(text)
            out += (value, text)
        rendered = "".join(out)
        return any(
            start < link.end() and link.start() < end
            for link in URL.finditer(rendered)
            for start, end in spans
        )


# Parses only: a template is never evaluated (rendering is `Template.render`), so there is
# nothing to escape and no sandbox to rely on.
_PARSER = Environment(autoescape=False)  # noqa: S701  (SMS text, parsed only: not HTML)
# `{% raw %}` leaves no node in the tree; statements are refused as tokens, before parsing.
_STATEMENT_TOKENS = {"block_begin", "raw_begin", "linestatement_begin"}


def template_of(text: str) -> Template:
    """The message's template, checked: plain text and whitelisted variables only, no
    variable inside a link, at most MAX_MESSAGE_LENGTH characters. Refuses anything else
    without rendering it."""
    if len(text) > MAX_MESSAGE_LENGTH:
        raise InvalidMessage(
            f"the message has more than {MAX_MESSAGE_LENGTH} characters: shorten it"
        )
    return _template_of(text)


@lru_cache(maxsize=256)  # holds bounded texts only (checked above; refusals are not cached)
def _template_of(text: str) -> Template:
    try:
        if any(kind in _STATEMENT_TOKENS for _, kind, _ in _PARSER.lex(text)):
            raise InvalidMessage(ONLY_VARIABLES)
        tree = _PARSER.parse(text)
    except TemplateSyntaxError as exc:
        # Jinja2's own message quotes the template: say where, not what.
        raise InvalidMessage(
            f"the message template is malformed (line {exc.lineno}): write a variable as "
            "{{ civilite }}, with both pairs of braces"
        ) from exc
    except RecursionError as exc:  # expressions nested deep enough to exhaust the parser
        raise InvalidMessage(ONLY_VARIABLES) from exc
    texts, names, current = [], [], []
    for statement in tree.body:
        if not isinstance(statement, nodes.Output):
            raise InvalidMessage(ONLY_VARIABLES)
        for node in statement.nodes:
            if isinstance(node, nodes.TemplateData):
                current.append(node.data)
            elif isinstance(node, nodes.Name) and node.ctx == "load":
                if node.name not in VARIABLES:
                    raise InvalidMessage(
                        "the message uses a variable that is not available: the only "
                        f"variables are {', '.join(sorted(VARIABLES))}"
                    )
                texts.append("".join(current))
                names.append(node.name)
                current = []
            else:  # arithmetic, filters, attributes, items, calls, tests, constants...
                raise InvalidMessage(ONLY_VARIABLES)
    texts.append("".join(current))
    template = Template(tuple(texts), tuple(names))
    if template.variable_in_link():
        raise InvalidMessage(
            "a link may not contain a variable: a per-recipient link would identify the "
            "people who visit it"
        )
    return template


def compose(text: str, sex: str, metropolitan: bool, stop_link: str | None) -> str:
    """`Mentions.compose` with the configured mentions."""
    return configured_mentions().compose(text, sex, metropolitan, stop_link)


@dataclass(frozen=True)
class CheckedMessage:
    text: str  # as the customer wrote it
    full_text: str  # with the mentions, variables at their longest (what is measured)
    encoding: str
    characters: int
    segments: int


def check_message(text: str, metropolitan: bool = True) -> CheckedMessage:
    """Validate a message for the territory of its recipients; the worst case decides."""
    if not text.strip():
        raise InvalidMessage("the message is empty")
    template = template_of(text)
    limit = get_settings().messages.max_segments
    # Every character takes at least one unit: beyond this it cannot fit, and it is refused
    # before anything is rendered or measured.
    if template.longest() > limit * GSM_SINGLE:
        raise InvalidMessage(
            f"the message takes more than {limit} SMS segments with its variables at their "
            f"longest; the maximum is {limit} ({limit * GSM_MULTI} characters): shorten it"
        )
    rendered = template.render(VARIABLES)
    full = f"{rendered.rstrip()} {mentions(metropolitan)}"
    enc = measure(full)
    if enc.segments > limit:
        per = part_size(enc.encoding)
        raise InvalidMessage(
            f"the message takes {enc.segments} SMS segments with its STOP and source mentions "
            f"({enc.characters} {enc.encoding} characters); the maximum is {limit} "
            f"({limit * per} characters): shorten it"
        )
    return CheckedMessage(text, full, enc.encoding, enc.characters, enc.segments)


def check_by_zone(text: str) -> dict[str, CheckedMessage]:
    """The message as each destination zone receives it (the STOP mention differs overseas).
    Both forms must fit, whatever an order's zone mix: suppressed cells hide small zones."""
    return {zone: check_message(text, zone == METRO) for zone in (METRO, OVERSEAS)}


def worst_case(checks: dict[str, CheckedMessage], zones: dict[str, int]) -> CheckedMessage:
    """The longest form among the zones present in a mix (metropolitan when none is): the
    form an order is checked and shown with."""
    present = [checks[z] for z in checks if zones.get(z, 0) > 0] or [checks[METRO]]
    return max(present, key=lambda c: (c.segments, c.characters))


def segments_by_zone(checks: dict[str, CheckedMessage]) -> dict[str, int]:
    """SMS segments per message in each zone: what transport is priced on."""
    return {zone: c.segments for zone, c in checks.items()}


# Look-alikes in the GSM alphabet for common characters that are not in it (typographic
# punctuation that word processors put in); accented letters are found by dropping the accent.
_LOOK_ALIKES = {
    "\u2019": "'",
    "\u2018": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2026": "...",
    "\u2013": "-",
    "\u2014": "-",
    "\u00a0": " ",
    "\u202f": " ",
    "\u0153": "oe",
    "\u0152": "OE",
}


def in_gsm(text: str) -> bool:
    """Can `text` be sent in GSM-7 (the encoding `measure` would pick for it alone)?"""
    try:
        text.encode("gsm03.38")
    except UnicodeEncodeError:
        return False
    return True


def ucs2_characters(text: str) -> dict[str, str | None]:
    """The characters of `text` that force the whole message into UCS-2, each with a GSM-7
    look-alike to suggest ("ê" -> "e"), or None when there is none."""
    out: dict[str, str | None] = {}
    for c in dict.fromkeys(text):
        if in_gsm(c):
            continue
        plain = _LOOK_ALIKES.get(c) or "".join(
            k for k in unicodedata.normalize("NFKD", c) if not unicodedata.combining(k)
        )
        out[c] = plain if plain and plain != c and in_gsm(plain) else None
    return out
