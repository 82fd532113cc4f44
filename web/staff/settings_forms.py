"""The organisation settings' forms read into the API's own models (OrganisationTerms,
PriceGrid), so that the page and the API refuse the same things; their refusals in the
reader's language, beside each field. Decimals are written as the reader's language writes them
('0,075', '0.075'); both are read."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from sales.accounts.endpoints import OrganisationTerms
from sales.accounts.models import ContentReview, Role
from sales.pricing.schemas import ZONES, PriceGrid
from web import i18n
from web.i18n import N_, Words
from web.i18n import gettext as _
from web.security import Fields, field
from web.staff.actions import FormInvalid

SPACES = " \u00a0\u202f"
TERMS_FIELDS = ("content_review", "refund", "billing_address", "vat_number", "siren")
TERMS_WORDS = Words(
    {
        "content_review": N_(
            "Choisissez le mode de relecture des messages : automatique ou manuelle."
        ),
        "refund_deposit_on_cancel": N_("Cochez la case ou laissez-la vide."),
        "billing_address": N_(
            "Saisissez l'adresse de facturation telle qu'elle doit figurer sur les "
            "factures : de 5 à 300 caractères, sans caractère de contrôle."
        ),
        "vat_number": N_(
            "Saisissez le numéro de TVA intracommunautaire : le code du pays en deux "
            "lettres puis 2 à 13 chiffres ou lettres (par exemple FR12345678901)."
        ),
        "siren": N_("Saisissez le numéro SIREN : 9 chiffres (par exemple 123456789)."),
    }
)
EXTRA_TIERS = 2  # empty rows under the grid's tiers, to add a tier without script
MAX_TIERS = 20  # PriceGrid's own bound
SAMPLES = (10_000, 50_000)  # sample orders the preview always prices
ZONE_WORDS = Words({"metro": N_("métropole"), "overseas": N_("outre-mer")})


def _compact(text: str) -> str:
    return "".join(c for c in text if c not in SPACES)


def _optional(text: str) -> str | None:
    """An empty field leaves the stored value as it is (as an absent field does in the API)."""
    return text or None


def terms(fields: Fields) -> OrganisationTerms:
    """The terms typed, checked by the API's model (numbers typed with spaces or in lower
    case are taken: 'fr 12 345 678 901')."""
    doc = {
        "content_review": field(fields, "content_review") or None,
        "refund_deposit_on_cancel": field(fields, "refund") == "oui",
        "billing_address": _optional(field(fields, "billing_address").strip()),
        "vat_number": _optional(_compact(field(fields, "vat_number")).upper()),
        "siren": _optional(_compact(field(fields, "siren"))),
    }
    try:
        return OrganisationTerms.model_validate(doc)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for e in exc.errors():
            name = str(e["loc"][0]) if e["loc"] else ""
            name = {"refund_deposit_on_cancel": "refund"}.get(name, name)
            errors.setdefault(name, TERMS_WORDS.get(name, TERMS_WORDS["billing_address"]))
        raise FormInvalid(errors) from None


# The price grid ---------------------------------------------------------------------------


def _point(text: str) -> str:
    """A decimal point as the reader's language writes it: a comma in French."""
    return text.replace(".", ",") if i18n.current() == "fr" else text


def decimal_text(value: Decimal) -> str:
    """0.075 -> '0,075' as the form shows it (trailing zeros kept: they are the grid's)."""
    return _point(format(value, "f"))


def unit_price(value: Decimal) -> str:
    """A price per contact, all its decimals kept: '0,075 €', '€0.075' in English."""
    text = decimal_text(value)
    return f"{text}\u00a0€" if i18n.current() == "fr" else f"€{text}"


def percent_text(rate: Decimal) -> str:
    """0.20 -> '20'; 0.055 -> '5,5'."""
    return _point(format((rate * 100).normalize(), "f"))


def grid_values(grid: PriceGrid) -> dict[str, str]:
    """A grid as the editor's fields show it, with empty rows to add tiers."""
    values = {"name": grid.name, "vat": percent_text(grid.vat_rate)}
    for zone in ZONES:
        values[zone] = decimal_text(grid.transport_eur(zone))
    rows = min(len(grid.rental_tiers) + EXTRA_TIERS, MAX_TIERS)
    for i in range(rows):
        tier = grid.rental_tiers[i] if i < len(grid.rental_tiers) else None
        values[f"tier-{i}-min"] = str(tier.min_volume) if tier else ""
        values[f"tier-{i}-price"] = decimal_text(tier.per_contact_eur) if tier else ""
    return values


def typed_grid(fields: Fields) -> dict[str, str]:
    """What was typed in the editor, to show it again."""
    names = ["name", "vat", *ZONES, "quantity", "overseas_share", "segments"]
    for i in range(MAX_TIERS):
        names += [f"tier-{i}-min", f"tier-{i}-price"]
    return {n: field(fields, n) for n in names if n in fields}


def tier_rows(values: dict[str, str]) -> list[int]:
    """The indexes of the editor's tier rows."""
    return [i for i in range(MAX_TIERS) if f"tier-{i}-min" in values]


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(_compact(text).replace(",", "."))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _whole(text: str) -> int | None:
    """A whole number typed with spaces ('10 000'), or in English with commas ('10,000')."""
    text = _compact(text)
    if i18n.current() != "fr":
        text = text.replace(",", "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None


COHERENCE = Words(
    {
        "first rental tier": N_("Le premier palier doit commencer au volume 0."),
        "increasing": N_(
            "Les paliers doivent avoir des volumes minimaux croissants, sans doublon."
        ),
    }
)
VAT_WORDS = N_("Saisissez le taux de TVA en pourcentage, de 0 à 100 (par exemple 20).")


def _volume_words(i: int) -> str:
    return _("Palier %(tier)s : volume minimal en nombre entier.") % {"tier": i + 1}


def _price_words(i: int) -> str:
    return _(
        "Palier %(tier)s : prix par contact en euros, de 0 à 100, avec au plus 5 décimales "
        "(par exemple 0,075)."
    ) % {"tier": i + 1}


def _transport_words(zone: str) -> str:
    return _(
        "Transport %(zone)s : prix par segment en euros, de 0 à 100, avec au plus 5 décimales "
        "(par exemple 0,075)."
    ) % {"zone": ZONE_WORDS.get(zone, zone)}


def _grid_words(loc: tuple[int | str, ...], rows: list[int], msg: str) -> tuple[str, str]:
    """Which field a refusal of PriceGrid is about, and what to do, in the reader's words."""
    head = str(loc[0]) if loc else ""
    if head == "rental_tiers" and len(loc) >= 3 and isinstance(loc[1], int):
        i = rows[loc[1]]
        if loc[2] == "min_volume":
            return f"tier-{i}-min", _volume_words(i)
        return f"tier-{i}-price", _price_words(i)
    if head == "rental_tiers":
        return "tiers", _("Saisissez de 1 à 20 paliers.")
    if head == "transport_per_segment_eur" and len(loc) >= 2:
        zone = str(loc[1])
        return zone, _transport_words(zone)
    if head == "vat_rate":
        return "vat", _(VAT_WORDS)
    if head == "name":
        return "name", _(
            "Nommez la grille : lettres, chiffres, espaces, points, tirets ; 60 caractères au plus."
        )
    for hint, text in COHERENCE.items():
        if hint in msg:
            return "tiers", text
    return "tiers", _("Vérifiez les paliers et les prix de transport.")


def _tiers(fields: Fields, errors: dict[str, str]) -> tuple[list[dict[str, object]], list[int]]:
    tiers, rows = [], []
    for i in range(MAX_TIERS):
        low, price_text = field(fields, f"tier-{i}-min"), field(fields, f"tier-{i}-price")
        if not _compact(low) and not _compact(price_text):
            continue  # an empty row: no tier
        volume, unit = _whole(low), _decimal(price_text)
        if volume is None:
            errors[f"tier-{i}-min"] = _volume_words(i)
        if unit is None:
            errors[f"tier-{i}-price"] = _price_words(i)
        tiers.append({"min_volume": volume or 0, "per_contact_eur": unit or Decimal(0)})
        rows.append(i)
    return tiers, rows


def grid(fields: Fields) -> PriceGrid:
    """The grid typed in the editor (decimal commas, VAT as a percentage), checked by the API's
    PriceGrid."""
    errors: dict[str, str] = {}
    tiers, rows = _tiers(fields, errors)
    transport = {}
    for zone in ZONES:
        unit = _decimal(field(fields, zone))
        if unit is None:
            errors[zone] = _transport_words(zone)
        transport[zone] = unit if unit is not None else Decimal(0)
    vat = _decimal(field(fields, "vat"))
    if vat is None:
        errors["vat"] = _(VAT_WORDS)
    doc = {
        "name": field(fields, "name").strip(),
        "rental_tiers": tiers,
        "transport_per_segment_eur": transport,
        "vat_rate": (vat or Decimal(0)) / 100,
    }
    try:
        checked = PriceGrid.model_validate(doc)
    except ValidationError as exc:
        typed_wrong = bool(errors)  # then a tier's placeholder 0 may break the order: say less
        for e in exc.errors():
            name, text = _grid_words(tuple(e["loc"]), rows, str(e["msg"]))
            if not (typed_wrong and name == "tiers"):
                errors.setdefault(name, text)
        raise FormInvalid(errors) from None
    if errors:
        raise FormInvalid(errors)
    return checked


@dataclass(frozen=True)
class Sample:
    """The sample order the preview prices: how many messages, the overseas share, segments."""

    quantity: int
    overseas_percent: int
    segments: int

    @property
    def mix(self) -> dict[str, int]:
        if self.overseas_percent == 0:
            return {"metro": 1}
        return {"metro": 100 - self.overseas_percent, "overseas": self.overseas_percent}


def sample(fields: Fields) -> Sample:
    quantity = _whole(field(fields, "quantity") or str(SAMPLES[0]))
    share = _whole(field(fields, "overseas_share") or "0")
    segments = _whole(field(fields, "segments") or "1")
    errors = {}
    if quantity is None or not 1 <= quantity <= 10_000_000:
        errors["quantity"] = _("Saisissez un nombre de messages entier, de 1 à 10 000 000.")
    if share is None or share > 100:
        errors["overseas_share"] = _("Saisissez une part outre-mer entière, de 0 à 100 %.")
    if segments is None or not 1 <= segments <= 10:
        errors["segments"] = _("Saisissez un nombre de segments par message, de 1 à 10.")
    if errors or quantity is None or share is None or segments is None:
        raise FormInvalid(errors)
    return Sample(quantity, share, segments)


# People and keys ---------------------------------------------------------------------------

ROLE_WORDS = Words(
    {
        Role.client: N_("Client (marketeur)"),
        Role.account_manager: N_("Chargé de compte"),
        Role.admin: N_("Administrateur"),
    }
)


def roles_for(broker: bool) -> list[Role]:
    """The roles a user of this organisation may have: staff belong to the broker's."""
    return [Role.account_manager, Role.admin] if broker else [Role.client]


def role(fields: Fields, broker: bool) -> Role:
    text = field(fields, "role")
    allowed = roles_for(broker)
    chosen = next((r for r in allowed if r.value == text), None)
    if chosen is None:
        raise FormInvalid({"role": _("Choisissez un rôle parmi ceux proposés.")})
    return chosen


LABEL_MAX = 60


def label(fields: Fields) -> str | None:
    """A key's label (the name of the user the key acts as); empty: the role and a number."""
    text = " ".join(field(fields, "label").split())
    if len(text) > LABEL_MAX or not text.isprintable():
        raise FormInvalid(
            {
                "label": _("Saisissez un libellé de %(most)s caractères au plus, ou rien.")
                % {"most": LABEL_MAX}
            }
        )
    return text or None


REVIEW_WORDS = Words(
    {
        ContentReview.auto: N_("Automatique : le message est approuvé à la commande"),
        ContentReview.manual: N_("Manuelle : chaque message attend un chargé de compte"),
    }
)
