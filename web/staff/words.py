"""The order pages' words, French first (English from the catalogue, in the request's
language): the names of states and actions, criteria in words, amounts typed in euros, and the
services' refusals as sentences that say what to do."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from babel.dates import format_date, format_datetime

from datasets import reference
from dispatch import windows
from kit import clock
from kit.errors import RentalError
from segmentation import criteria as catalogue
from web import i18n
from web.i18n import N_, Words
from web.i18n import gettext as _
from web.templating import euros, number

ORDER_STATUS = Words(
    {
        "awaiting_deposit": N_("En attente d'acompte"),
        "confirmed": N_("Confirmée"),
        "scheduled": N_("Planifiée"),
        "dispatching": N_("En cours d'envoi"),
        "sent": N_("Envoyée"),
        "reported": N_("Rapport final"),
        "closed": N_("Clôturée"),
        "cancelled": N_("Annulée"),
        "on_hold": N_("Suspendue"),
    }
)
RIGHTS_KIND = Words(
    {
        "rectification": N_("Rectification"),
        "written": N_("Demande écrite"),
        "objection": N_("Opposition"),
        "erasure": N_("Effacement"),
    }
)
CONTENT_STATUS = Words(
    {"pending": N_("À relire"), "approved": N_("Approuvé"), "rejected": N_("Refusé")}
)
HOLD_KIND = Words(
    {
        "volume": N_("volume insuffisant au moment de l'envoi"),
        "manual": N_("suspendue par un chargé de compte"),
    }
)
INVOICE_KIND = Words({"deposit": N_("Acompte"), "balance": N_("Solde"), "credit_note": N_("Avoir")})
INVOICE_STATUS = Words(
    {
        "unpaid": N_("Impayée"),
        "partially_paid": N_("Partiellement payée"),
        "paid": N_("Payée"),
        "cancelled": N_("Annulée"),
        "refund_due": N_("À rembourser"),
        "refunded": N_("Remboursé"),
        "applied": N_("Imputé"),
    }
)
WAVE_STATUS = Words(
    {
        "planned": N_("Prévue"),
        "waiting": N_("En attente (fenêtre fermée)"),
        "sending": N_("En cours"),
        "done": N_("Terminée"),
    }
)
RESERVATION = Words({"none": N_("aucune"), "complete": N_("complète"), "short": N_("insuffisante")})
EVENT = Words(
    {
        "created": N_("Commande passée"),
        "deposit_invoiced": N_("Facture d'acompte émise"),
        "payment_recorded": N_("Paiement enregistré"),
        "confirmed": N_("Commande confirmée (destinataires réservés)"),
        "redrawn": N_("Destinataires tirés à nouveau"),
        "scheduled": N_("Envoi planifié"),
        "content_approved": N_("Contenu approuvé"),
        "content_rejected": N_("Contenu refusé"),
        "message_revised": N_("Message modifié"),
        "cancellation_requested": N_("Annulation demandée par le client"),
        "cancellation_declined": N_("Demande d'annulation refusée"),
        "cancelled": N_("Commande annulée"),
        "dispatch_requested": N_("Envoi immédiat demandé"),
        "held": N_("Commande suspendue"),
        "released": N_("Commande remise en route"),
        "volume_accepted": N_("Volume réduit accepté"),
        "balance_invoiced": N_("Facture de solde émise"),
        "credit_note_issued": N_("Avoir émis"),
        "dispatch_started": N_("Envoi commencé"),
        "carrier_unavailable": N_("Opérateur indisponible"),
        "carrier_recovered": N_("Opérateur de nouveau disponible"),
        "sent": N_("Envoi terminé"),
        "report_final": N_("Rapport d'envoi définitif"),
    }
)
DETAIL = Words(
    {
        "reason": N_("motif"),
        "reference": N_("référence"),
        "amount_cents": N_("montant"),
        "amount_incl_vat_cents": N_("montant TTC"),
        "total_incl_vat_cents": N_("total TTC"),
        "invoice": N_("facture"),
        "invoice_status": N_("état de la facture"),
        "quantity": N_("quantité"),
        "quantity_before": N_("quantité avant"),
        "content_review": N_("relecture"),
        "sender": N_("expéditeur"),
        "deposit": N_("acompte"),
        "credit_notes": N_("avoirs"),
        "sent": N_("envoyés"),
        "requested_send_at": N_("envoi demandé pour"),
        "last_error": N_("dernière erreur"),
        "reservation": N_("réservation"),
        "offered_quantity": N_("volume proposé"),
    }
)
# Values of event details that are words of the code.
DETAIL_VALUE = Words(
    {
        "refunded": N_("remboursé"),
        "kept": N_("conservé"),
        "none paid": N_("aucun paiement"),
        "complete": N_("complète"),
        "short": N_("insuffisante"),
        "none": N_("aucune"),
        "manual": N_("manuelle"),
        "auto": N_("automatique"),
        "insufficient_volume": N_("volume insuffisant"),
    }
)
BY = Words({"system": N_("le système"), "client": N_("le client")})


@cache
def _department_names() -> dict[str, str]:
    deps = reference.departments()
    return dict(zip(deps["code"], deps["name"], strict=True))


def calendar(key: str) -> str:
    """A wave's calendar in words: metropolitan France, Alsace-Moselle (its own holidays) with
    its departments, or the overseas department."""
    if key == windows.calendar_of("75").key:
        return _("France métropolitaine")
    names = _department_names()
    if key.startswith("alsace-moselle"):
        deps = ", ".join(names.get(d, d) for d in windows.departments_of_calendar(key))
        return _("Alsace-Moselle : %(departments)s") % {"departments": deps}
    return str(names.get(key, key))


def when(at: datetime | None) -> str:
    """An instant in Paris time, as French people write it (or '3 Feb 2026, 14:05')."""
    if at is None:
        return "—"
    local = at.astimezone(clock.PARIS)
    if i18n.current() == "fr":
        return local.strftime("%d/%m/%Y à %H:%M")
    return str(format_datetime(local, "d MMM yyyy, HH:mm", locale=i18n.current()))


def day(d: date | None) -> str:
    if d is None:
        return "—"
    if i18n.current() == "fr":
        return d.strftime("%d/%m/%Y")
    return str(format_date(d, "d MMM yyyy", locale=i18n.current()))


def detail(key: str, value: Any) -> str:
    """One detail of an order's event, for the timeline."""
    if key.endswith("_cents") and isinstance(value, int):
        return euros(value)
    if key == "invoice_status":
        return INVOICE_STATUS.get(str(value), str(value))
    if isinstance(value, str) and value in DETAIL_VALUE:
        return DETAIL_VALUE[value]
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or _("aucun")
    if isinstance(value, int):
        return number(value)
    return str(value)


def by(text: str) -> str:
    return BY.get(text, text.replace("account manager", _("chargé de compte")))


# Amounts --------------------------------------------------------------------------------


def cents_of(text: str) -> int | None:
    """'1 234,56', '1234.56 €' or '360' -> cents (in English, '1,234.56'); None when it is
    not an amount in euros."""
    cleaned = "".join(c for c in text if c not in " \u00a0\u202f€")
    if i18n.current() == "fr":
        cleaned = cleaned.replace(",", ".")
    else:
        cleaned = cleaned.replace(",", "")  # the English thousands separator
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        return None
    return int(amount * 100)


def euros_field(cents: int) -> str:
    """Cents as a form shows them: '360,00' ('360.00' in English)."""
    whole, part = divmod(cents, 100)
    point = "," if i18n.current() == "fr" else "."
    return f"{whole}{point}{part:02d}"


# Refusals ------------------------------------------------------------------------------


WHAT = Words(
    {
        "pay": N_("enregistrer un paiement"),
        "approve": N_("approuver le contenu"),
        "reject": N_("refuser le contenu"),
        "release": N_("remettre la commande en route"),
        "hold": N_("suspendre la commande"),
        "cancel": N_("annuler la commande"),
        "decline": N_("refuser la demande d'annulation"),
        "dispatch": N_("envoyer maintenant"),
    }
)
LOCKED = Words(
    {
        "approve": N_("son contenu ne peut plus changer."),
        "reject": N_("suspendez-la avant de refuser son contenu."),
        "decline": N_("aucune demande d'annulation n'attend sur cette commande."),
        "dispatch": N_(
            "l'envoi immédiat a déjà été demandé, et une commande n'est envoyée qu'une fois."
        ),
        "hold": N_("seule une commande qui n'est pas encore en cours d'envoi peut être suspendue."),
    }
)


def _status(exc: RentalError) -> str:
    current = exc.extra.get("current_status")
    return ORDER_STATUS.get(str(current), _("dans un état")) if current else _("dans un état")


def refusal(exc: RentalError, action: str) -> str:
    """The service's refusal of `action`, in the reader's language, with what to do."""
    code = exc.code
    what = WHAT[action] if action in WHAT else _("faire cette action")
    if code == "order_not_found":
        return _("Cette commande n'existe pas. Revenez à la file de travail et choisissez-en une.")
    if code == "invalid_transition":
        state = _status(exc).lower()
        return _("La commande est « %(state)s » : impossible de %(what)s dans cet état.") % {
            "state": state,
            "what": what,
        }
    if code == "order_locked":
        why = LOCKED[action] if action in LOCKED else _("la commande a changé d'état.")
        return _("Impossible de %(what)s : %(why)s") % {"what": what, "why": why}
    if code == "overpayment":
        due = int(exc.extra.get("outstanding_cents", 0))
        return _(
            "Le montant dépasse ce qui reste dû sur la facture %(invoice)s : %(due)s TTC. "
            "Saisissez au plus ce montant."
        ) % {"invoice": exc.extra.get("invoice", ""), "due": euros(due)}
    if code == "nothing_to_pay":
        return _(
            "Aucune facture de cette commande n'attend de paiement (ou la commande est "
            "annulée) : rien n'a été enregistré."
        )
    if code == "payment_reference_reused":
        return _(
            "Cette référence est déjà enregistrée pour une autre commande ou un autre montant : "
            "saisissez la référence unique de ce virement."
        )
    if code == "invalid_payment_date":
        return _(
            "La date de réception doit être comprise entre le jour de la commande et "
            "aujourd'hui : saisissez le jour où la banque a reçu le paiement."
        )
    return _("Impossible de %(what)s : %(detail)s") % {"what": what, "detail": exc.detail}


# Criteria in words -----------------------------------------------------------------------


@cache
def _labels(language: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Each criterion's label and its values' labels, in `language` (the catalogue has both)."""
    label = f"label_{language}"
    return {
        c["key"]: (c[label], {v["value"]: v[label] for v in c.get("values", [])})
        for c in catalogue.catalogue()["criteria"]
    }


def _value(key: str, value: str, names: dict[str, str]) -> str:
    label = names.get(value)
    if label is None:
        return value
    return f"{value} {label}" if key == "departments" else label


def _line(key: str, value: Any) -> str:
    label, names = _labels(i18n.current()).get(key, (key, {}))
    if key == "age" and isinstance(value, dict):
        low, high = value.get("min", catalogue.MIN_AGE), value.get("max", catalogue.MAX_AGE)
        return _("%(label)s : de %(low)s à %(high)s ans") % {
            "label": label,
            "low": low,
            "high": high,
        }
    if key == "radius" and isinstance(value, dict):
        return _("%(label)s : %(km)s km autour de la commune %(commune)s") % {
            "label": label,
            "km": value.get("km"),
            "commune": value.get("commune"),
        }
    if key == "children":
        value = _("oui") if value else _("non")
    elif isinstance(value, list):
        value = ", ".join(_value(key, str(v), names) for v in value)
    return _("%(label)s : %(value)s") % {"label": label, "value": value}


def in_words(criteria: dict[str, Any]) -> list[str]:
    """A quote's criteria, one line per criterion; the exclusion last, with its own lines."""
    lines = [_line(k, v) for k, v in criteria.items() if k != "exclude" and v is not None]
    if not lines:
        lines = [_("Toute la base (aucun critère)")]
    excluded = criteria.get("exclude")
    if excluded:
        inner = " ; ".join(_line(k, v) for k, v in excluded.items() if v is not None)
        lines.append(_("Sauf (exclusion) : %(criteria)s") % {"criteria": inner})
    return lines


def apart(flagged: dict[str, Any], near: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What only the flagged quote's criteria say, and what only the near quote's say."""
    mine, theirs = in_words(flagged), in_words(near)
    return [x for x in mine if x not in theirs], [x for x in theirs if x not in mine]
