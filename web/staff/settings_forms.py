"""The organisation settings' forms read into the API's own models (OrganisationTerms,
PriceGrid), so that the page and the API refuse the same things; their refusals in French,
beside each field."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from sales.accounts.endpoints import OrganisationTerms
from sales.accounts.models import ContentReview, Role
from sales.pricing.schemas import ZONES, PriceGrid
from web.security import Fields, field
from web.staff.actions import FormInvalid

SPACES = " \u00a0\u202f"
TERMS_FIELDS = ("content_review", "refund", "billing_address", "vat_number", "siren")
TERMS_WORDS = {
    "content_review": "Choisissez le mode de relecture des messages : automatique ou manuelle.",
    "refund_deposit_on_cancel": "Cochez la case ou laissez-la vide.",
    "billing_address": "Saisissez l'adresse de facturation telle qu'elle doit figurer sur les "
    "factures : de 5 à 300 caractères, sans caractère de contrôle.",
    "vat_number": "Saisissez le numéro de TVA intracommunautaire : le code du pays en deux "
    "lettres puis 2 à 13 chiffres ou lettres (par exemple FR12345678901).",
    "siren": "Saisissez le numéro SIREN : 9 chiffres (par exemple 123456789).",
}
EXTRA_TIERS = 2  # empty rows under the grid's tiers, to add a tier without script
MAX_TIERS = 20  # PriceGrid's own bound
SAMPLES = (10_000, 50_000)  # sample orders the preview always prices
ZONE_WORDS = {"metro": "métropole", "overseas": "outre-mer"}


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


def decimal_text(value: Decimal) -> str:
    """0.075 -> '0,075' as the form shows it (trailing zeros kept: they are the grid's)."""
    return format(value, "f").replace(".", ",")


def percent_text(rate: Decimal) -> str:
    """0.20 -> '20'; 0.055 -> '5,5'."""
    return format((rate * 100).normalize(), "f").replace(".", ",")


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
    text = _compact(text)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None


PRICE = "en euros, de 0 à 100, avec au plus 5 décimales (par exemple 0,075)"
COHERENCE = {
    "first rental tier": "Le premier palier doit commencer au volume 0.",
    "increasing": "Les paliers doivent avoir des volumes minimaux croissants, sans doublon.",
}


def _grid_words(loc: tuple[int | str, ...], rows: list[int], msg: str) -> tuple[str, str]:
    """Which field a refusal of PriceGrid is about, and what to do, in French."""
    head = str(loc[0]) if loc else ""
    if head == "rental_tiers" and len(loc) >= 3 and isinstance(loc[1], int):
        i = rows[loc[1]]
        if loc[2] == "min_volume":
            return f"tier-{i}-min", f"Palier {i + 1} : volume minimal en nombre entier."
        return f"tier-{i}-price", f"Palier {i + 1} : prix par contact {PRICE}."
    if head == "rental_tiers":
        return "tiers", "Saisissez de 1 à 20 paliers."
    if head == "transport_per_segment_eur" and len(loc) >= 2:
        zone = str(loc[1])
        return zone, f"Transport {ZONE_WORDS.get(zone, zone)} : prix par segment {PRICE}."
    if head == "vat_rate":
        return "vat", "Saisissez le taux de TVA en pourcentage, de 0 à 100 (par exemple 20)."
    if head == "name":
        return "name", (
            "Nommez la grille : lettres, chiffres, espaces, points, tirets ; 60 caractères au plus."
        )
    for hint, text in COHERENCE.items():
        if hint in msg:
            return "tiers", text
    return "tiers", "Vérifiez les paliers et les prix de transport."


def _tiers(fields: Fields, errors: dict[str, str]) -> tuple[list[dict[str, object]], list[int]]:
    tiers, rows = [], []
    for i in range(MAX_TIERS):
        low, price_text = field(fields, f"tier-{i}-min"), field(fields, f"tier-{i}-price")
        if not _compact(low) and not _compact(price_text):
            continue  # an empty row: no tier
        volume, unit = _whole(low), _decimal(price_text)
        if volume is None:
            errors[f"tier-{i}-min"] = f"Palier {i + 1} : volume minimal en nombre entier."
        if unit is None:
            errors[f"tier-{i}-price"] = f"Palier {i + 1} : prix par contact {PRICE}."
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
            errors[zone] = f"Transport {ZONE_WORDS[zone]} : prix par segment {PRICE}."
        transport[zone] = unit if unit is not None else Decimal(0)
    vat = _decimal(field(fields, "vat"))
    if vat is None:
        errors["vat"] = "Saisissez le taux de TVA en pourcentage, de 0 à 100 (par exemple 20)."
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
        errors["quantity"] = "Saisissez un nombre de messages entier, de 1 à 10 000 000."
    if share is None or share > 100:
        errors["overseas_share"] = "Saisissez une part outre-mer entière, de 0 à 100 %."
    if segments is None or not 1 <= segments <= 10:
        errors["segments"] = "Saisissez un nombre de segments par message, de 1 à 10."
    if errors or quantity is None or share is None or segments is None:
        raise FormInvalid(errors)
    return Sample(quantity, share, segments)


# People and keys ---------------------------------------------------------------------------

ROLE_WORDS = {
    Role.client: "Client (marketeur)",
    Role.account_manager: "Chargé de compte",
    Role.admin: "Administrateur",
}


def roles_for(broker: bool) -> list[Role]:
    """The roles a user of this organisation may have: staff belong to the broker's."""
    return [Role.account_manager, Role.admin] if broker else [Role.client]


def role(fields: Fields, broker: bool) -> Role:
    text = field(fields, "role")
    allowed = roles_for(broker)
    chosen = next((r for r in allowed if r.value == text), None)
    if chosen is None:
        raise FormInvalid({"role": "Choisissez un rôle parmi ceux proposés."})
    return chosen


LABEL_MAX = 60


def label(fields: Fields) -> str | None:
    """A key's label (the name of the user the key acts as); empty: the role and a number."""
    text = " ".join(field(fields, "label").split())
    if len(text) > LABEL_MAX or not text.isprintable():
        raise FormInvalid(
            {"label": f"Saisissez un libellé de {LABEL_MAX} caractères au plus, ou rien."}
        )
    return text or None


REVIEW_WORDS = {
    ContentReview.auto: "Automatique : le message est approuvé à la commande",
    ContentReview.manual: "Manuelle : chaque message attend un chargé de compte",
}
