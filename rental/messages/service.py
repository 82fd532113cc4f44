"""Message rules checked at order time: sender name, mentions, encoding, segments, templates.

- GSM 03.38 when every character is in the GSM alphabet (extension characters such as EUR or
  '[' take two septets), otherwise UCS-2 for the whole message (counted in UTF-16 units).
- One segment holds 160 septets or 70 UCS-2 units; a concatenated message 153 or 67 per part.
- The STOP mention is appended automatically and counted: "STOP au <short code>" for
  metropolitan numbers, a personal STOP link elsewhere (overseas operators may not carry
  replies), then the short source mention. Both are plain GSM text, so they never change the
  encoding the customer's own text implies.
- Templates run in a Jinja2 sandbox with a short whitelist of variables; a variable inside a
  link (a per-recipient token the customer could read back from the link's visits) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
from jinja2 import Template, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from kit.settings import get_settings
from rental.messages.exceptions import InvalidMessage, InvalidSender

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67
# What a template may use, with the longest value each can take (lengths are checked on it).
VARIABLES = {"civilite": "Mademoiselle", "civility": "Mademoiselle"}
URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
SENDER = re.compile(r"[A-Za-z0-9]{3,11}")
STOP_LINK_PLACEHOLDER = "https://stop.sms/XXXXXXXX"  # a personal link has this length
STOP_TOKEN_LENGTH = 8


@dataclass(frozen=True)
class Encoded:
    encoding: str  # "GSM-7" or "UCS-2"
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


@lru_cache(maxsize=4096)
def measure(text: str) -> Encoded:
    try:
        sizes = [len(c.encode("gsm03.38")) for c in text]
    except UnicodeEncodeError:
        sizes = [len(c.encode("utf-16-le")) // 2 for c in text]
        return Encoded("UCS-2", sum(sizes), len(parts_of(sizes, UCS2_SINGLE, UCS2_MULTI)))
    return Encoded("GSM-7", sum(sizes), len(parts_of(sizes, GSM_SINGLE, GSM_MULTI)))


def check_sender(sender: str) -> str:
    s = get_settings()
    if not SENDER.fullmatch(sender) or not any(c.isalpha() for c in sender):
        raise InvalidSender(
            "the sender name must have 3 to 11 letters or digits (no spaces or accents), "
            "with at least one letter, e.g. 'ACME'"
        )
    if sender.lower() in {w.lower() for w in s.blocked_senders}:
        raise InvalidSender("this sender is a generic name operators refuse: use your brand's name")
    return sender


def mentions(metropolitan: bool) -> str:
    s = get_settings()
    stop = f"STOP au {s.stop_short_code}" if metropolitan else f"STOP {STOP_LINK_PLACEHOLDER}"
    return f"{stop} {s.source_mention}"


def _template(text: str) -> str:
    """The text with every allowed variable at its longest value; refuses anything else."""
    env = SandboxedEnvironment(autoescape=False)
    env.globals.clear()  # no range, cycler, namespace...: the whitelist is all there is
    try:
        parsed = env.parse(text)
    except TemplateSyntaxError as exc:
        raise InvalidMessage(f"the message template is malformed on line {exc.lineno}") from exc
    # Every name the template reads, wherever it appears (find_undeclared_variables skips
    # names Jinja2 treats specially, such as `self`).
    used = {n.name for n in parsed.find_all(nodes.Name) if n.ctx == "load"}
    forbidden = sorted(used - set(VARIABLES))
    if forbidden:
        raise InvalidMessage(
            "the message uses a variable that is not available: the only "
            f"variables are {', '.join(sorted(VARIABLES))}"
        )
    for link in URL.findall(text):
        if "{{" in link or "{%" in link:
            raise InvalidMessage(
                "a link may not contain a variable: a per-recipient link would identify the "
                "people who visit it"
            )
    try:
        return env.from_string(text).render(**VARIABLES)
    except Exception as exc:  # the sandbox refuses unsafe operations at render time
        raise InvalidMessage(
            "the message template cannot be rendered: use the variables as they are"
        ) from exc


CIVILITY = {"F": "Madame", "M": "Monsieur"}


@lru_cache(maxsize=256)
def _compiled(text: str) -> Template:
    env = SandboxedEnvironment(autoescape=False)
    env.globals.clear()
    return env.from_string(text)


@lru_cache(maxsize=1024)
def _rendered(text: str, civility: str) -> str:
    return _compiled(text).render(civilite=civility, civility=civility)


def compose(text: str, sex: str, metropolitan: bool, stop_link: str | None) -> str:
    """The message one recipient receives: the template rendered with their variables, then
    the STOP mention of their territory and the source mention. (A template has one rendering
    per civility: both are cached.)"""
    civility = CIVILITY.get(sex, "Madame, Monsieur")
    rendered = _rendered(text, civility)
    s = get_settings()
    stop = f"STOP au {s.stop_short_code}" if metropolitan else f"STOP {stop_link}"
    return f"{rendered.rstrip()} {stop} {s.source_mention}"


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
    rendered = _template(text)
    full = f"{rendered.rstrip()} {mentions(metropolitan)}"
    enc = measure(full)
    limit = get_settings().max_segments
    if enc.segments > limit:
        per = GSM_MULTI if enc.encoding == "GSM-7" else UCS2_MULTI
        raise InvalidMessage(
            f"the message takes {enc.segments} SMS segments with its STOP and source mentions "
            f"({enc.characters} {enc.encoding} characters); the maximum is {limit} "
            f"({limit * per} characters): shorten it"
        )
    return CheckedMessage(text, full, enc.encoding, enc.characters, enc.segments)
