"""An organisation's settings, for account managers: its terms (content review, refund of the
deposit, billing identity), its price grid with the price of a sample order, its people and
its API keys. Every form calls the service, and records the audit row, of its API route
(sales/accounts/endpoints.py, sales/pricing/endpoints.py); a first password or a key is shown
once, on the page that answers the form, and never travels in a URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from kit.db import unit_of_work
from kit.settings import get_settings
from sales.accounts import service as accounts
from sales.accounts.endpoints import OrganisationOut
from sales.accounts.exceptions import OrganisationNotFound
from sales.accounts.models import ContentReview
from sales.accounts.signin import WebUser
from sales.pricing import service as pricing
from sales.pricing.repository import ContractGridRepository
from sales.pricing.schemas import ZONES, Price
from web.i18n import N_, Words
from web.i18n import gettext as _
from web.session import PageRefused
from web.staff import settings_forms as forms
from web.staff.access import QUEUE, StaffUserDep, common
from web.templating import render

router = APIRouter(include_in_schema=False)
ORGANISATIONS = QUEUE + "/organisations"


def organisation_page(organisation_id: int) -> str:
    return f"{ORGANISATIONS}/{organisation_id}"


# What a form that went through tells the account manager (the code travels in the URL).
DONE = Words(
    {
        "conditions": N_("Conditions du contrat enregistrées."),
        "grille": N_("Grille tarifaire du contrat enregistrée : les prochains devis l'appliquent."),
        "grille-standard": N_("Grille du contrat supprimée : la grille standard s'applique."),
        "grille-deja-standard": N_(
            "Cette organisation avait déjà la grille standard : rien n'a changé."
        ),
        "cle-revoquee": N_("Clé d'API révoquée : elle est refusée dès la prochaine requête."),
        "compte-desactive": N_(
            "Compte désactivé : la personne ne peut plus se connecter, ses sessions sont "
            "fermées et ses clés d'API révoquées."
        ),
        "compte-reactive": N_("Compte réactivé : la personne peut de nouveau se connecter."),
    }
)


@dataclass
class Sent:
    """A form of the page sent back: which (`form`), what is wrong with each field ('' for
    the form as a whole), what was typed."""

    form: str
    errors: dict[str, str]
    values: dict[str, str] = field(default_factory=dict)

    def at(self, form: str) -> dict[str, str]:
        return self.errors if form == self.form else {}

    def typed(self, form: str) -> dict[str, str] | None:
        """What was typed in `form`; None: show what is stored."""
        return self.values if form == self.form and self.values else None

    def summary(self) -> dict[str, str]:
        """For the error summary: the id of each field in error -> its message."""
        return {
            (f"{self.form}-{name}" if name else "form"): text for name, text in self.errors.items()
        }


@dataclass(frozen=True)
class Secret:
    """A first password or an API key, shown on this one page and nowhere after."""

    kind: str  # "password" or "key"
    value: str
    subject: str  # the person's e-mail, or the key's label


def whole_id(text: str) -> int:
    """An organisation's id from the address; anything else is a page not found."""
    if text.isascii() and text.isdigit() and len(text) <= 10:
        return int(text)
    raise PageRefused(404, _("Organisation introuvable"), _("Choisissez-en une dans la liste."))


def _people(session: Session, organisation_id: int) -> list[dict[str, Any]]:
    people = [u for u in accounts.members(session, organisation_id) if u.email]
    last = accounts.last_sign_ins(session, {u.id for u in people})
    return [
        {
            "id": u.id,
            "email": u.email,
            "disabled_at": u.disabled_at,
            "role": forms.ROLE_WORDS.get(u.role, u.role.value),
            "created_at": u.created_at,
            "last_sign_in": last.get(u.id),
            "must_change": u.password_must_change,
        }
        for u in people
    ]


def _keys(session: Session, organisation_id: int) -> list[dict[str, Any]]:
    return [
        {
            "id": k.id,
            "prefix": k.prefix,
            "label": k.user.name,
            "role": forms.ROLE_WORDS.get(k.user.role, k.user.role.value),
            "created_at": k.created_at,
            "revoked_at": k.revoked_at,
        }
        for k in accounts.keys_of(session, organisation_id)
    ]


def _load(session: Session, organisation_id: int) -> dict[str, Any]:
    try:
        org = accounts.get_organisation(session, organisation_id)
    except OrganisationNotFound:
        raise PageRefused(
            404, _("Organisation introuvable"), _("Choisissez une organisation dans la liste.")
        ) from None
    contract = ContractGridRepository(session).get(organisation_id)
    broker = org.name == get_settings().broker_organisation
    return {
        "org": OrganisationOut.model_validate(org, from_attributes=True),
        "broker": broker,
        "contract": contract,
        "grid": pricing.grid_for(session, organisation_id),
        "people": _people(session, organisation_id),
        "keys": _keys(session, organisation_id),
        "roles": [(r.value, forms.ROLE_WORDS[r]) for r in forms.roles_for(broker)],
    }


def settings_page(
    request: Request,
    who: WebUser,
    organisation_id: int,
    sent: Sent | None = None,
    status: int = 200,
    secret: Secret | None = None,
    preview: list[Price] | None = None,
) -> Response:
    """The settings page; with a form sent back, its errors and what was typed; with a secret,
    the one time it is shown."""
    with unit_of_work() as session:
        context = _load(session, organisation_id)
    grid_typed = sent.typed("grille") if sent else None
    context |= common(who, "organisations") | {
        "sent": sent,
        "errors": sent.summary() if sent else {},
        "secret": secret,
        "preview": preview,
        "done": DONE.get(request.query_params.get("fait", ""), ""),
        "grid_values": grid_typed or forms.grid_values(context["grid"]),
        "zones": [(z, forms.ZONE_WORDS[z]) for z in ZONES],
        "reviews": [(r.value, forms.REVIEW_WORDS[r]) for r in ContentReview],
        "samples": forms.SAMPLES,
        "unit_price": forms.unit_price,
        "page": organisation_page(organisation_id),
        "list_page": ORGANISATIONS,
    }
    context["tier_rows"] = forms.tier_rows(context["grid_values"])
    return render(request, "staff_organisation.html", context, status)


@router.get(ORGANISATIONS)
def organisations(request: Request, who: StaffUserDep) -> Response:
    """Every organisation: its review mode, its grid, its people and live keys."""
    with unit_of_work() as session:
        counts = accounts.headcounts(session)
        grids = ContractGridRepository(session)
        rows = [
            {
                "org": org,
                "contract": grids.get(org.id),
                "people": counts.get(org.id, (0, 0))[0],
                "live_keys": counts.get(org.id, (0, 0))[1],
            }
            for org in accounts.organisations(session)
        ]
    context = common(who, "organisations") | {
        "rows": rows,
        "broker": get_settings().broker_organisation,
        "list_page": ORGANISATIONS,
    }
    return render(request, "staff_organisations.html", context)


@router.get(ORGANISATIONS + "/{organisation_id}")
def organisation(request: Request, who: StaffUserDep, organisation_id: str) -> Response:
    return settings_page(request, who, whole_id(organisation_id))


def done(organisation_id: int, code: str, section: str) -> Response:
    """Back to the page (POST, redirect, GET) with what was done; never a secret."""
    return RedirectResponse(
        f"{organisation_page(organisation_id)}?fait={code}#{section}", status_code=303
    )
