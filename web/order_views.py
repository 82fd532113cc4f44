"""What the order form shows as the marketer types: the message as each zone receives it, the
characters that force UCS-2, the sender's check and the waves of the chosen send time.

Every rule is sales/messages' and dispatch/windows' own (the functions the API and dispatch
call): this module only puts their answers into words for the page, in the reader's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from babel.dates import format_datetime
from pydantic import TypeAdapter, ValidationError

from datasets.geography import METRO, OVERSEAS
from dispatch import waves, windows
from kit import clock
from kit.settings import get_settings
from sales.messages import service as messages
from sales.messages.exceptions import InvalidMessage, InvalidSender
from sales.quotes.models import Quote
from segmentation.criteria import Criteria
from web import i18n
from web.i18n import N_, Words
from web.i18n import gettext as _
from web.staff import words

ZONE_LABELS = Words({METRO: N_("France métropolitaine"), OVERSEAS: N_("Outre-mer")})
DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


@dataclass
class ZoneView:
    """The message as one zone's recipients receive it."""

    zone: str
    label: str
    encoding: str
    characters: int
    segments: int
    preview: str


@dataclass
class WaveView:
    """One calendar's wave for the chosen time: when it would start and end, local time."""

    label: str
    time_zone: str
    starts: str
    ends: str
    later: str = ""  # why it does not start at the chosen time, if it does not


@dataclass
class Composer:
    zones: list[ZoneView] = field(default_factory=list)
    message_error: str = ""
    misfits: list[tuple[str, str | None]] = field(default_factory=list)
    runs: list[tuple[str, bool]] = field(default_factory=list)  # the text, misfits marked
    sender_error: str = ""
    send_error: str = ""
    waves: list[WaveView] = field(default_factory=list)
    max_segments: int = 0


def message_view(text: str, composer: Composer) -> None:
    """Characters, encoding, segments and preview per zone (`check_by_zone`, as the API's
    POST /v1/messages/check), and the characters that force UCS-2."""
    composer.max_segments = get_settings().messages.max_segments
    found = messages.ucs2_characters(text)
    composer.misfits = list(found.items())
    composer.runs = _runs(text, set(found))
    if not text.strip():
        composer.message_error = _("Écrivez votre message.")
        return
    try:
        checks = messages.check_by_zone(text)
    except InvalidMessage as exc:
        composer.message_error = _("Ce message ne peut pas être envoyé : %(detail)s") % {
            "detail": exc.detail
        }
        return
    composer.zones = [
        ZoneView(z, ZONE_LABELS.get(z, z), c.encoding, c.characters, c.segments, c.full_text)
        for z, c in checks.items()
    ]


def _runs(text: str, misfits: set[str]) -> list[tuple[str, bool]]:
    """The text cut into runs of ordinary characters and single characters that force UCS-2."""
    runs: list[tuple[str, bool]] = []
    for c in text:
        if c in misfits:
            runs.append((c, True))
        elif runs and not runs[-1][1]:
            runs[-1] = (runs[-1][0] + c, False)
        else:
            runs.append((c, False))
    return runs


def sender_error(sender: str) -> str:
    """The sender name's check, in the reader's language ('' when it is fine)."""
    if not sender:
        return _("Indiquez le nom d'expéditeur affiché sur les téléphones.")
    try:
        messages.check_sender(sender)
    except InvalidSender as exc:
        if "generic" in exc.detail:
            return _(
                "Ce nom générique est refusé par les opérateurs : utilisez le nom de votre marque."
            )
        return _(
            "De 3 à 11 lettres ou chiffres, sans espace ni accent, avec au moins une lettre "
            "(par exemple ACME)."
        )
    return ""


_INSTANT = TypeAdapter(clock.Instant)


def send_instant(value: str) -> datetime | None:
    """The form's date-time read as the API reads `send_at` (Paris time without an offset)."""
    try:
        return clock.to_utc(_INSTANT.validate_python(value))
    except ValidationError:
        return None


def _day_time(here: datetime) -> str:
    """'lundi 07/12/2026 à 09:00', or 'Monday 7 Dec 2026, 09:00' in English."""
    if i18n.current() == "fr":
        return f"{DAYS[here.weekday()]} {here:%d/%m/%Y à %H:%M}"
    return str(format_datetime(here, "EEEE d MMM yyyy, HH:mm", locale=i18n.current()))


def paris(at: datetime) -> str:
    """An instant in words, Paris time."""
    return _("%(when)s (heure de Paris)") % {"when": _day_time(at.astimezone(clock.PARIS))}


def _calendar_label(key: str) -> str:
    if key.startswith("alsace"):
        return _("%(calendar)s (jours fériés locaux)") % {"calendar": words.calendar(key)}
    return words.calendar(key)


def _local(at: datetime, cal: windows.Calendar) -> str:
    return _day_time(windows.local(cal, at))


def _why_later(cal: windows.Calendar, at: datetime) -> str:
    day = windows.local(cal, at).date()
    if windows.is_holiday(cal, day):
        return _("jour férié à cet endroit")
    if day.weekday() not in windows.configured().days:
        return _("pas d'envoi ce jour-là")
    return _("hors des heures d'envoi")


def wave_views(quote: Quote, at: datetime) -> list[WaveView]:
    """One wave per calendar the quote's criteria reach (as dispatch/waves lists an order's),
    opening at the chosen time or at the next legal window after it."""
    out = []
    for key in sorted(waves.reachable(Criteria.model_validate(quote.criteria))):
        cal = windows.calendar_from_key(key)
        opens = windows.next_opening(cal, at)
        later = "" if opens == at else _why_later(cal, at)
        out.append(
            WaveView(
                _calendar_label(key),
                cal.time_zone,
                _local(opens, cal),
                _local(windows.closing(cal, opens), cal),
                later,
            )
        )
    return out


def when_view(quote: Quote, value: str, composer: Composer) -> None:
    """The send time's waves, or why there are none."""
    if not value:
        composer.send_error = _("Choisissez la date et l'heure d'envoi.")
        return
    at = send_instant(value)
    if at is None:
        composer.send_error = _("Date et heure illisibles : utilisez le format JJ/MM/AAAA HH:MM.")
        return
    if at < clock.now() - clock.SKEW:  # as the API: "now", typed a minute ago, is still now
        composer.send_error = _("Cette date est passée : choisissez un moment à venir.")
        return
    try:
        composer.waves = wave_views(quote, at)
    except ValueError:
        composer.send_error = _("Aucune fenêtre d'envoi dans les 30 jours qui suivent cette date.")


def compose(quote: Quote, text: str, sender: str, send_at: str) -> Composer:
    """Everything the composer panel shows for what was typed."""
    composer = Composer()
    message_view(text, composer)
    composer.sender_error = sender_error(sender)
    when_view(quote, send_at, composer)
    return composer
