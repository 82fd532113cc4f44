"""Who may open the account managers' pages, their addresses, and a form that failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends

from sales.accounts.signin import WebUser
from web.i18n import gettext as _
from web.session import PageRefused, WebUserDep
from web.staff import words

QUEUE = "/app/gestion"
AUDIT = QUEUE + "/audit"


def order_page(order_id: str) -> str:
    return f"{QUEUE}/commandes/{order_id}"


def _staff(who: WebUserDep) -> WebUser:
    """Account managers and admins; a client gets a 403 page (signed out: to the sign-in)."""
    if not who.principal.is_staff:
        raise PageRefused(
            403,
            _("Page réservée aux chargés de compte"),
            _(
                "Cette page sert aux chargés de compte du courtier : votre compte n'y a pas "
                "accès. Vos ciblages et vos commandes sont dans votre espace."
            ),
        )
    return who


StaffUserDep = Annotated[WebUser, Depends(_staff)]


@dataclass
class Problem:
    """A form sent back: where it was (`place`: a queue section or the order page), its order
    and action, what is wrong with each field ('' for the form as a whole), what was typed."""

    place: str
    order_id: str
    action: str
    errors: dict[str, str]
    values: dict[str, str] = field(default_factory=dict)

    def anchor(self, name: str = "") -> str:
        """The id of the form, or of one of its fields, in the page."""
        base = f"{self.place}-{self.action}-{self.order_id}"
        return f"{base}-{name}" if name else base

    def summary(self) -> dict[str, str]:
        """For the error summary at the top of the page: anchor -> message."""
        return {self.anchor(name): text for name, text in self.errors.items()}

    def at(self, place: str, order_id: str, action: str) -> dict[str, str]:
        """The errors of one form of the page (none when the problem is another form's)."""
        if (place, order_id, action) != (self.place, self.order_id, self.action):
            return {}
        return self.errors


def common(who: WebUser, active: str) -> dict[str, Any]:
    """What every staff page's template uses: the person, the menu, the French words."""
    return {
        "user": who,
        "active": active,
        "csrf": who.csrf_token,
        "w": words,
        "when": words.when,
        "day": words.day,
        "euros_field": words.euros_field,
    }
