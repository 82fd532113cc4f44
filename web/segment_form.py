"""The segment builder's form, read into the API's Criteria.

The form only parses what people type (ages and kilometres as numbers, lists of postcodes);
every rule on the values (known codes, list limits, the radius' limit, a radius needs its
commune) is the Criteria model's, and its refusals are said next to their field, in the
reader's language (criteria and their values labelled from the catalogue's French or English).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from datasets import reference
from segmentation import criteria as catalogue
from segmentation.criteria import MAX_AGE, MIN_AGE, Criteria
from web import i18n
from web.i18n import gettext as _
from web.i18n import ngettext
from web.security import Fields
from web.security import field as one

# Criteria whose values the form lists as boxes to tick, in the catalogue's order.
BOXES = ("sex", "csp", "regions", "departments", "housing", "dwelling", "income", "interests")
# What an exclusion ("repoussoir") offers: people matching ALL the ticked keys are left out.
EXCLUDE_BOXES = ("departments", "csp", "income", "interests", "housing", "dwelling")
EXCLUDE = "exclude_"
CHILDREN = {"": None, "yes": True, "no": False}
FILES = "exclusion_files"  # the organisation's exclusion files ticked (sales/exclusions)
FILE_ID_LENGTH = 36  # a file id is a UUID
SEARCH_LIMIT = 10  # communes listed for one search
POSTCODE_FIELDS = ("postcodes", EXCLUDE + "postcodes")


def choices() -> list[dict[str, Any]]:
    """The boxes of the form: each criterion's label and its values, in the reader's
    language."""
    return _choices(i18n.current())


@cache
def _choices(language: str) -> list[dict[str, Any]]:
    listed = {c["key"]: c for c in catalogue.catalogue()["criteria"]}
    label = f"label_{language}"
    return [
        {
            "key": key,
            "label": listed[key][label],
            "values": [(v["value"], v[label]) for v in listed[key]["values"]],
        }
        for key in BOXES
    ]


@cache
def _communes() -> dict[str, tuple[str, str]]:
    com = reference.communes()
    return {
        insee: (name, dep)
        for insee, name, dep in zip(com["insee"], com["name"], com["department"], strict=True)
    }


@dataclass(frozen=True)
class Commune:
    """A commune as the form shows it: 'Nice (06)'; an unknown code shows as typed."""

    insee: str
    name: str
    department: str = ""
    postcodes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name} ({self.department})" if self.department else self.name


def commune(insee: str) -> Commune:
    name, dep = _communes().get(insee, (insee, ""))
    return Commune(insee, name, dep)


def search(text: str) -> list[Commune]:
    """Communes by name, INSEE code or postcode, as `GET /v1/criteria/communes` finds them."""
    text = text.strip()[:60]
    if len(text) < 2:
        return []
    return [
        Commune(c["commune"], c["name"], c["department"], tuple(c["postcodes"]))
        for c in catalogue.search_communes(text, SEARCH_LIMIT)
    ]


@dataclass
class Segment:
    """What the form says: the criteria, what to show filled in, and what is wrong."""

    ticked: dict[str, set[str]] = field(default_factory=dict)
    excluded: dict[str, set[str]] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)
    age_min: str = str(MIN_AGE)
    age_max: str = str(MAX_AGE)
    children: str = ""
    postcodes: str = ""
    exclude_postcodes: str = ""
    communes: list[Commune] = field(default_factory=list)
    commune_search: str = ""
    commune_results: list[Commune] = field(default_factory=list)
    radius_commune: Commune | None = None
    radius_km: str = ""
    radius_search: str = ""
    radius_results: list[Commune] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    criteria: Criteria | None = None


def _age(text: str, default: int, name: str, errors: dict[str, str]) -> int:
    text = text.strip()
    if not text:
        return default
    if not text.isdigit() or not MIN_AGE <= int(text) <= MAX_AGE:
        errors[name] = _("Saisissez un âge entier entre %(low)s et %(high)s ans.") % {
            "low": MIN_AGE,
            "high": MAX_AGE,
        }
        return default
    return int(text)


def _codes(text: str) -> list[str]:
    """'06000, 06100 83000' -> the codes in the order typed, once each."""
    return list(dict.fromkeys(c for c in re.split(r"[\s,;]+", text) if c))


def _km(text: str, errors: dict[str, str]) -> float | None:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        km = float(text)
    except ValueError:
        km = math.nan
    if not math.isfinite(km):  # 'nan' and 'inf' read as numbers: not what anyone typed
        errors["radius_km"] = _("Saisissez le rayon en kilomètres, par exemple 20 ou 2,5.")
        return None
    return km


def _read_fields(fields: Fields) -> Segment:
    def many(name: str) -> set[str]:
        return {v[:20] for v in fields.get(name, []) if v}

    radius = one(fields, "radius_commune").strip()
    return Segment(
        ticked={key: many(key) for key in BOXES},
        excluded={key: many(EXCLUDE + key) for key in EXCLUDE_BOXES},
        files={v[:FILE_ID_LENGTH] for v in fields.get(FILES, []) if v},
        age_min=one(fields, "age_min").strip()[:3] or str(MIN_AGE),
        age_max=one(fields, "age_max").strip()[:3] or str(MAX_AGE),
        children=one(fields, "children") if one(fields, "children") in CHILDREN else "",
        postcodes=one(fields, "postcodes")[:600],
        exclude_postcodes=one(fields, EXCLUDE + "postcodes")[:600],
        communes=[commune(c) for c in sorted(many("communes"))],
        commune_search=one(fields, "commune_search")[:60],
        radius_commune=commune(radius[:20]) if radius else None,
        radius_km=one(fields, "radius_km").strip()[:12],
        radius_search=one(fields, "radius_search")[:60],
    )


def _document(seg: Segment) -> dict[str, Any]:
    """The criteria document of a form whose numbers parsed (the API's request body)."""
    doc: dict[str, Any] = {key: sorted(vals) for key, vals in seg.ticked.items() if vals}
    low = _age(seg.age_min, MIN_AGE, "age_min", seg.errors)
    high = _age(seg.age_max, MAX_AGE, "age_max", seg.errors)
    if not seg.errors and low > high:
        seg.errors["age_max"] = _("L'âge maximum est inférieur à l'âge minimum : inversez-les.")
    if (low, high) != (MIN_AGE, MAX_AGE):
        doc["age"] = {"min": low, "max": high}
    if CHILDREN[seg.children] is not None:
        doc["children"] = CHILDREN[seg.children]
    if _codes(seg.postcodes):
        doc["postcodes"] = _codes(seg.postcodes)
    if seg.communes:
        doc["communes"] = [c.insee for c in seg.communes]
    km = _km(seg.radius_km, seg.errors)
    if seg.radius_commune is not None or km is not None:
        doc["radius"] = {"km": km} if km is not None else {}
        if seg.radius_commune is not None:
            doc["radius"]["commune"] = seg.radius_commune.insee
    exclude: dict[str, Any] = {key: sorted(v) for key, v in seg.excluded.items() if v}
    if _codes(seg.exclude_postcodes):
        exclude["postcodes"] = _codes(seg.exclude_postcodes)
    if exclude:
        doc["exclude"] = exclude
    if seg.files:
        doc[FILES] = sorted(seg.files)
    return doc


def read_segment(fields: Fields) -> Segment:
    """The criteria of a posted form (an empty form: the whole base), and the communes its
    search boxes find (for the page without script)."""
    seg = _read_fields(fields)
    seg.commune_results = search(seg.commune_search)
    seg.radius_results = search(seg.radius_search)
    doc = _document(seg)
    if seg.errors:
        return seg
    try:
        seg.criteria = Criteria.model_validate(doc)
    except ValidationError as exc:
        for error in exc.errors():
            name, text = explain(error, doc)
            seg.errors.setdefault(name, text)
    return seg


POSITIONS = re.compile(r"position ([0-9, ]+)")
LIMIT = re.compile(r"has (\d+) values, more than the limit of (\d+)")
KM_LIMIT = re.compile(r"over the limit of (\d+) km")


def _field_of(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "form"
    if loc[0] in ("exclude", "radius") and len(loc) > 1:
        return f"{loc[0]}_{loc[1]}"
    return str(loc[0])


def _typed(doc: dict[str, Any], loc: tuple[int | str, ...], msg: str) -> list[str]:
    """The values a refusal of a list points at (by their positions in the list sent)."""
    found = POSITIONS.search(msg)
    sent = doc.get("exclude", {}) if loc[0] == "exclude" else doc
    values = sent.get(str(loc[-1]), []) if isinstance(sent, dict) else []
    if not found or not isinstance(values, list):
        return []
    at = [int(p) for p in found.group(1).replace(" ", "").split(",") if p.isdigit()]
    return [str(values[i]) for i in at if i < len(values)]


def _list_text(name: str, msg: str, bad: list[str]) -> str | None:
    limit = LIMIT.search(msg)
    if limit:
        return _(
            "%(count)s valeurs, au-delà de la limite de %(limit)s : retirez-en ou choisissez "
            "plutôt des départements."
        ) % {"count": limit.group(1), "limit": limit.group(2)}
    if name in POSTCODE_FIELDS and bad:
        # Only what has a postcode's length is repeated: never a long number typed by mistake.
        shown = [b for b in bad if len(b) <= 5][:5]
        if len(shown) == len(bad):
            which = ngettext(
                "Code postal inconnu : %(codes)s.", "Codes postaux inconnus : %(codes)s.", len(bad)
            ) % {"codes": ", ".join(shown)}
        else:
            which = ngettext("Code postal inconnu.", "Codes postaux inconnus.", len(bad))
        return (
            which
            + " "
            + _(
                "Saisissez des codes postaux français à 5 chiffres, séparés par des virgules (par "
                "exemple 06000, 83000)."
            )
        )
    if name == "communes" and bad:
        return _("Commune inconnue : retirez-la et cherchez-la à nouveau par son nom.")
    if name == FILES and "at most" in msg:
        return _("Cochez au plus %(limit)s fichiers repoussoirs.") % {
            "limit": catalogue.MAX_EXCLUSION_FILES
        }
    if name == FILES:
        return _("Ce fichier repoussoir n'est pas utilisable : décochez-le.")
    return None


def _radius_text(name: str, kind: str, msg: str, doc: dict[str, Any]) -> str | None:
    if name == "radius_commune":
        if kind == "missing":
            return _("Choisissez la commune au centre du rayon : cherchez-la par son nom.")
        return _("Commune inconnue : cherchez à nouveau la commune au centre du rayon.")
    if name == "radius_km":
        limit = KM_LIMIT.search(msg)
        if kind == "missing":
            centre = commune(str(doc.get("radius", {}).get("commune", ""))).label
            return _("Saisissez le rayon en kilomètres autour de %(centre)s.") % {"centre": centre}
        if limit:
            return _("Le rayon dépasse la limite de %(km)s km : réduisez-le.") % {
                "km": limit.group(1)
            }
        return _("Saisissez un rayon de plus de 0 km.")
    return None


def explain(error: ErrorDetails, doc: dict[str, Any]) -> tuple[str, str]:
    """A refusal of the Criteria model, said for the field it concerns."""
    loc = tuple(error["loc"])
    name = _field_of(loc)
    msg = str(error["msg"])
    text = _radius_text(name, error["type"], msg, doc) or (
        _list_text(name, msg, _typed(doc, loc, msg)) if loc else None
    )
    if text is None:
        text = _("Ce choix n'est pas possible : rechargez la page et recommencez (%(detail)s).") % {
            "detail": msg.removeprefix("Value error, ")
        }
    return name, text
