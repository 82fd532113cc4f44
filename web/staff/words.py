"""The account managers' pages in French: the names of states and actions, criteria in words,
amounts typed in euros, and the services' refusals as sentences that say what to do."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from datasets import reference
from dispatch import windows
from kit import clock
from kit.errors import RentalError
from segmentation import criteria as catalogue
from web.templating import euros, number

ORDER_STATUS = {
    "awaiting_deposit": "En attente d'acompte",
    "confirmed": "Confirmée",
    "scheduled": "Planifiée",
    "dispatching": "En cours d'envoi",
    "sent": "Envoyée",
    "reported": "Rapport final",
    "closed": "Clôturée",
    "cancelled": "Annulée",
    "on_hold": "Suspendue",
}
CONTENT_STATUS = {"pending": "À relire", "approved": "Approuvé", "rejected": "Refusé"}
HOLD_KIND = {
    "volume": "volume insuffisant au moment de l'envoi",
    "manual": "suspendue par un chargé de compte",
}
INVOICE_KIND = {"deposit": "Acompte", "balance": "Solde", "credit_note": "Avoir"}
INVOICE_STATUS = {
    "unpaid": "Impayée",
    "partially_paid": "Partiellement payée",
    "paid": "Payée",
    "cancelled": "Annulée",
    "refund_due": "À rembourser",
    "refunded": "Remboursé",
    "applied": "Imputé",
}
WAVE_STATUS = {
    "planned": "Prévue",
    "waiting": "En attente (fenêtre fermée)",
    "sending": "En cours",
    "done": "Terminée",
}
RESERVATION = {"none": "aucune", "complete": "complète", "short": "insuffisante"}
EVENT = {
    "created": "Commande passée",
    "deposit_invoiced": "Facture d'acompte émise",
    "payment_recorded": "Paiement enregistré",
    "confirmed": "Commande confirmée (destinataires réservés)",
    "redrawn": "Destinataires tirés à nouveau",
    "scheduled": "Envoi planifié",
    "content_approved": "Contenu approuvé",
    "content_rejected": "Contenu refusé",
    "message_revised": "Message modifié",
    "cancellation_requested": "Annulation demandée par le client",
    "cancellation_declined": "Demande d'annulation refusée",
    "cancelled": "Commande annulée",
    "dispatch_requested": "Envoi immédiat demandé",
    "held": "Commande suspendue",
    "released": "Commande remise en route",
    "volume_accepted": "Volume réduit accepté",
    "balance_invoiced": "Facture de solde émise",
    "credit_note_issued": "Avoir émis",
    "dispatch_started": "Envoi commencé",
    "carrier_unavailable": "Opérateur indisponible",
    "carrier_recovered": "Opérateur de nouveau disponible",
    "sent": "Envoi terminé",
    "report_final": "Rapport d'envoi définitif",
}
DETAIL = {
    "reason": "motif",
    "reference": "référence",
    "amount_cents": "montant",
    "amount_incl_vat_cents": "montant TTC",
    "total_incl_vat_cents": "total TTC",
    "invoice": "facture",
    "invoice_status": "état de la facture",
    "quantity": "quantité",
    "quantity_before": "quantité avant",
    "content_review": "relecture",
    "sender": "expéditeur",
    "deposit": "acompte",
    "credit_notes": "avoirs",
    "sent": "envoyés",
    "requested_send_at": "envoi demandé pour",
    "last_error": "dernière erreur",
    "reservation": "réservation",
    "offered_quantity": "volume proposé",
}
# Values of event details that are words of the code.
DETAIL_VALUE = {
    "refunded": "remboursé",
    "kept": "conservé",
    "none paid": "aucun paiement",
    "complete": "complète",
    "short": "insuffisante",
    "none": "aucune",
    "manual": "manuelle",
    "auto": "automatique",
    "insufficient_volume": "volume insuffisant",
}
BY = {"system": "le système", "client": "le client"}


@cache
def _department_names() -> dict[str, str]:
    deps = reference.departments()
    return dict(zip(deps["code"], deps["name"], strict=True))


def calendar(key: str) -> str:
    """A wave's calendar in words: metropolitan France, Alsace-Moselle (its own holidays) with
    its departments, or the overseas department."""
    if key == windows.calendar_of("75").key:
        return "France métropolitaine"
    names = _department_names()
    if key.startswith("alsace-moselle"):
        deps = windows.departments_of_calendar(key)
        return "Alsace-Moselle : " + ", ".join(names.get(d, d) for d in deps)
    return str(names.get(key, key))


def when(at: datetime | None) -> str:
    """An instant in Paris time, as French people write it."""
    if at is None:
        return "—"
    return at.astimezone(clock.PARIS).strftime("%d/%m/%Y à %H:%M")


def day(d: date | None) -> str:
    return d.strftime("%d/%m/%Y") if d else "—"


def detail(key: str, value: Any) -> str:
    """One detail of an order's event, for the timeline."""
    if key.endswith("_cents") and isinstance(value, int):
        return euros(value)
    if key == "invoice_status":
        return INVOICE_STATUS.get(str(value), str(value))
    if isinstance(value, str) and value in DETAIL_VALUE:
        return DETAIL_VALUE[value]
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "aucun"
    if isinstance(value, int):
        return number(value)
    return str(value)


def by(text: str) -> str:
    return BY.get(text, text.replace("account manager", "chargé de compte"))


# Amounts --------------------------------------------------------------------------------


def cents_of(text: str) -> int | None:
    """'1 234,56', '1234.56 €' or '360' -> cents; None when it is not an amount in euros."""
    cleaned = "".join(c for c in text if c not in " \u00a0\u202f€").replace(",", ".")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        return None
    return int(amount * 100)


def euros_field(cents: int) -> str:
    """Cents as a form shows them: '360,00'."""
    whole, part = divmod(cents, 100)
    return f"{whole},{part:02d}"


# Refusals ------------------------------------------------------------------------------

WHAT = {
    "pay": "enregistrer un paiement",
    "approve": "approuver le contenu",
    "reject": "refuser le contenu",
    "release": "remettre la commande en route",
    "hold": "suspendre la commande",
    "cancel": "annuler la commande",
    "decline": "refuser la demande d'annulation",
    "dispatch": "envoyer maintenant",
}
LOCKED = {
    "approve": "son contenu ne peut plus changer.",
    "reject": "suspendez-la avant de refuser son contenu.",
    "decline": "aucune demande d'annulation n'attend sur cette commande.",
    "dispatch": "l'envoi immédiat a déjà été demandé, et une commande n'est envoyée qu'une fois.",
    "hold": "seule une commande qui n'est pas encore en cours d'envoi peut être suspendue.",
}


def _status(exc: RentalError) -> str:
    current = exc.extra.get("current_status")
    return ORDER_STATUS.get(str(current), "dans un état") if current else "dans un état"


def refusal(exc: RentalError, action: str) -> str:
    """The service's refusal of `action`, in French, with what to do."""
    code, what = exc.code, WHAT.get(action, "faire cette action")
    if code == "order_not_found":
        return "Cette commande n'existe pas. Revenez à la file de travail et choisissez-en une."
    if code == "invalid_transition":
        state = _status(exc).lower()
        return f"La commande est « {state} » : impossible de {what} dans cet état."
    if code == "order_locked":
        return f"Impossible de {what} : " + LOCKED.get(action, "la commande a changé d'état.")
    if code == "overpayment":
        due = int(exc.extra.get("outstanding_cents", 0))
        return (
            f"Le montant dépasse ce qui reste dû sur la facture {exc.extra.get('invoice', '')} : "
            f"{euros(due)} TTC. Saisissez au plus ce montant."
        )
    if code == "nothing_to_pay":
        return (
            "Aucune facture de cette commande n'attend de paiement (ou la commande est "
            "annulée) : rien n'a été enregistré."
        )
    if code == "payment_reference_reused":
        return (
            "Cette référence est déjà enregistrée pour une autre commande ou un autre montant : "
            "saisissez la référence unique de ce virement."
        )
    if code == "invalid_payment_date":
        return (
            "La date de réception doit être comprise entre le jour de la commande et "
            "aujourd'hui : saisissez le jour où la banque a reçu le paiement."
        )
    return f"Impossible de {what} : {exc.detail}"


# Criteria in words -----------------------------------------------------------------------


@cache
def _labels() -> dict[str, tuple[str, dict[str, str]]]:
    """Each criterion's French label and its values' labels."""
    return {
        c["key"]: (c["label_fr"], {v["value"]: v["label_fr"] for v in c.get("values", [])})
        for c in catalogue.catalogue()["criteria"]
    }


def _value(key: str, value: str, names: dict[str, str]) -> str:
    label = names.get(value)
    if label is None:
        return value
    return f"{value} {label}" if key == "departments" else label


def _line(key: str, value: Any) -> str:
    label, names = _labels().get(key, (key, {}))
    if key == "age" and isinstance(value, dict):
        low, high = value.get("min", catalogue.MIN_AGE), value.get("max", catalogue.MAX_AGE)
        return f"{label} : de {low} à {high} ans"
    if key == "radius" and isinstance(value, dict):
        return f"{label} : {value.get('km')} km autour de la commune {value.get('commune')}"
    if key == "children":
        return f"{label} : {'oui' if value else 'non'}"
    if isinstance(value, list):
        return f"{label} : " + ", ".join(_value(key, str(v), names) for v in value)
    return f"{label} : {value}"


def in_words(criteria: dict[str, Any]) -> list[str]:
    """A quote's criteria, one line per criterion; the exclusion last, with its own lines."""
    lines = [_line(k, v) for k, v in criteria.items() if k != "exclude" and v is not None]
    if not lines:
        lines = ["Toute la base (aucun critère)"]
    excluded = criteria.get("exclude")
    if excluded:
        inner = " ; ".join(_line(k, v) for k, v in excluded.items() if v is not None)
        lines.append(f"Sauf (exclusion) : {inner}")
    return lines


def apart(flagged: dict[str, Any], near: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What only the flagged quote's criteria say, and what only the near quote's say."""
    mine, theirs = in_words(flagged), in_words(near)
    return [x for x in mine if x not in theirs], [x for x in theirs if x not in mine]
