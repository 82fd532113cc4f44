"""The criteria model (a public contract) and its catalogue.

AND across keys, OR within a key's list; `exclude` removes the prospects that match all of its
own keys. Every value is checked against the catalogue, so nothing unknown reaches the SQL.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from datasets import reference
from kit.fields import Flag, WholeNumber
from kit.settings import get_settings

LIST_KEYS = (
    "sex", "csp", "regions", "departments", "postcodes", "communes",
    "housing", "dwelling", "income", "interests",
)  # fmt: skip
MIN_AGE, MAX_AGE = 18, 105


class AgeRange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: WholeNumber = Field(default=MIN_AGE, ge=MIN_AGE, le=MAX_AGE)
    max: WholeNumber = Field(default=MAX_AGE, ge=MIN_AGE, le=MAX_AGE)

    @model_validator(mode="after")
    def _ordered(self) -> AgeRange:
        if self.min > self.max:
            raise ValueError("age min is greater than age max: swap them")
        return self


# The form of the values too many to list in the API document (GET /v1/criteria/communes
# finds them); every other list's values are listed there.
FORMS = {"postcodes": r"^[0-9]{5}$", "communes": r"^[0-9][0-9AB][0-9]{3}$"}


def _document_radius(schema: dict[str, Any]) -> None:
    schema["properties"]["commune"]["pattern"] = FORMS["communes"]
    schema["properties"]["km"]["maximum"] = get_settings().privacy.max_radius_km


class Radius(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_document_radius)
    commune: str
    km: float = Field(gt=0, strict=True)

    @field_validator("commune")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in allowed("communes"):
            raise ValueError(
                "unknown commune: give an INSEE commune code, e.g. '06088' (GET "
                "/v1/criteria/communes finds them)"
            )
        return v

    @field_validator("km")
    @classmethod
    def _limit(cls, v: float) -> float:
        limit = get_settings().privacy.max_radius_km
        if v > limit:
            raise ValueError(f"the radius is over the limit of {limit} km")
        return v


def _document_filters(schema: dict[str, Any]) -> None:
    """The catalogue's rules in the JSON schema (the validators below enforce them): each list
    holds 1 to max_list_values known values."""
    for key in LIST_KEYS:
        values = sorted(allowed(key))
        item = {"type": "string", "pattern": FORMS[key]} if key in FORMS else {"enum": values}
        listed = {
            "type": "array",
            "items": {"type": "string", **item},
            "minItems": 1,
            "maxItems": get_settings().privacy.max_list_values,
        }
        schema["properties"][key]["anyOf"] = [listed, {"type": "null"}]


class _Filters(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_document_filters)

    sex: list[str] | None = None
    age: AgeRange | None = None
    csp: list[str] | None = None
    regions: list[str] | None = None
    departments: list[str] | None = None
    postcodes: list[str] | None = None
    communes: list[str] | None = None
    radius: Radius | None = None
    housing: list[str] | None = None
    dwelling: list[str] | None = None
    children: Flag | None = None
    income: list[str] | None = None
    interests: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            names = set(cls.model_fields)
            if any(k not in names for k in data):
                raise ValueError(f"unknown criterion; allowed criteria: {', '.join(sorted(names))}")
        return data

    @field_validator(*LIST_KEYS)
    @classmethod
    def _values(cls, v: list[str] | None, info: Any) -> list[str] | None:
        if v is None:
            return None
        key = info.field_name
        limit = get_settings().privacy.max_list_values
        if not v:
            raise ValueError(f"{key} is an empty list: leave the key out to select everyone")
        if len(v) > limit:
            raise ValueError(f"{key} has {len(v)} values, more than the limit of {limit}")
        ok = allowed(key)
        bad = [str(i) for i, x in enumerate(v) if x not in ok]
        if bad:
            shown = ", ".join(sorted(ok)) if len(ok) <= 120 else "see GET /v1/criteria"
            at = ", ".join(bad[:10]) + (" ..." if len(bad) > 10 else "")
            raise ValueError(f"unknown value at position {at} of {key}; allowed: {shown}")
        return sorted(set(v))


class Exclusion(_Filters):
    """Prospects matching all of these keys are removed from the segment."""


def _document_criteria(schema: dict[str, Any]) -> None:
    _document_filters(schema)
    schema["examples"] = [
        {
            "sex": ["F"],
            "age": {"min": 25, "max": 45},
            "departments": ["06", "83"],
            "exclude": {"interests": ["gardening"]},
        }
    ]


MAX_EXCLUSION_FILES = 20
FileId = Annotated[str, Field(pattern=r"^[0-9a-f-]{36}$")]


class Criteria(_Filters):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_document_criteria)

    exclude: Exclusion | None = None
    # The customer's exclusion files (GET /v1/exclusion-files): their members are left out of
    # the count and of any draw, like opted-out people (segmentation/runtime.py loads them).
    exclusion_files: list[FileId] | None = Field(
        default=None, min_length=1, max_length=MAX_EXCLUSION_FILES
    )

    @field_validator("exclusion_files")
    @classmethod
    def _files(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else sorted(set(v))

    @field_validator("exclude")
    @classmethod
    def _exclude_not_empty(cls, v: Exclusion | None) -> Exclusion | None:
        if v is not None and not v.model_dump(exclude_none=True):
            raise ValueError("exclude is empty: give the criteria of the prospects to leave out")
        return v

    def canonical(self) -> dict[str, Any]:
        """Sorted, deduplicated, unset keys dropped: the same segment always reads the same."""
        return self.model_dump(mode="json", exclude_none=True)

    def canonical_json(self) -> str:
        return canonical_text(self.canonical())


def canonical_text(document: dict[str, Any]) -> str:
    """The one text of a criteria document: sorted keys, no spaces (stored, hashed, compared)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


@cache
def allowed(key: str) -> frozenset[str]:
    com = reference.communes
    values: dict[str, Callable[[], Any]] = {  # only the key's table is read (communes: ~15 MB)
        "sex": lambda: ("F", "M"),
        "csp": lambda: reference.pcs()["code"].to_list(),
        "regions": lambda: reference.departments()["region_code"].unique().to_list(),
        "departments": lambda: reference.departments()["code"].to_list(),
        "communes": lambda: com()["insee"].to_list(),
        "postcodes": lambda: com()["postcodes"].str.split("|").explode().unique().to_list(),
        "housing": lambda: ("owner", "tenant"),
        "dwelling": lambda: ("house", "flat"),
        "income": lambda: reference.income()["code"].to_list(),
        "interests": lambda: reference.interests()["code"].to_list(),
    }
    return frozenset(values[key]())


def catalogue() -> dict[str, Any]:
    """Every criterion with its allowed values and French and English labels."""
    deps = reference.departments().sort("code")
    regs = reference.regions().sort("code")
    keep_regions = allowed("regions")

    def vals(rows: list[tuple[str, str, str]]) -> list[dict[str, str]]:
        return [{"value": v, "label_fr": fr, "label_en": en} for v, fr, en in rows]

    def labelled(df: Any, code: str = "code") -> list[dict[str, str]]:
        return vals([(r[code], r["label_fr"], r["label_en"]) for r in df.iter_rows(named=True)])

    privacy = get_settings().privacy
    return {
        "semantics": "AND across criteria, OR within a list; 'exclude' removes prospects "
        "matching all of its keys; eligibility (SMS consent, recent interaction, opt-outs, "
        "contact pressure, reservations) always applies.",
        "minimum_segment_size": privacy.min_segment_size,
        "criteria": [
            {
                "key": "sex",
                "type": "list",
                "label_fr": "Sexe",
                "label_en": "Sex",
                "values": vals([("F", "Femme", "Woman"), ("M", "Homme", "Man")]),
            },
            {
                "key": "age",
                "type": "range",
                "label_fr": "Âge",
                "label_en": "Age",
                "min": MIN_AGE,
                "max": MAX_AGE,
                "example": {"min": 25, "max": 45},
            },
            {
                "key": "csp",
                "type": "list",
                "label_fr": "Catégorie socioprofessionnelle (PCS)",
                "label_en": "Socio-professional group (PCS)",
                "values": labelled(reference.pcs()),
            },
            {
                "key": "regions",
                "type": "list",
                "label_fr": "Régions",
                "label_en": "Regions",
                "values": vals(
                    [
                        (r["code"], r["name"], r["name"])
                        for r in regs.iter_rows(named=True)
                        if r["code"] in keep_regions
                    ]
                ),
            },
            {
                "key": "departments",
                "type": "list",
                "label_fr": "Départements",
                "label_en": "Departments",
                "values": vals(
                    [(r["code"], r["name"], r["name"]) for r in deps.iter_rows(named=True)]
                ),
            },
            {
                "key": "postcodes",
                "type": "list",
                "label_fr": "Codes postaux",
                "label_en": "Postcodes",
                "values_count": len(allowed("postcodes")),
                "lookup": "/v1/criteria/communes?search=",
                "example": ["06000"],
            },
            {
                "key": "communes",
                "type": "list",
                "label_fr": "Communes (code INSEE)",
                "label_en": "Communes (INSEE code)",
                "values_count": len(allowed("communes")),
                "lookup": "/v1/criteria/communes?search=",
                "example": ["06088"],
            },
            {
                "key": "radius",
                "type": "radius",
                "label_fr": "Rayon autour d'une commune",
                "label_en": "Radius around a commune",
                "max_km": privacy.max_radius_km,
                "example": {"commune": "06088", "km": 20},
            },
            {
                "key": "housing",
                "type": "list",
                "label_fr": "Statut d'occupation",
                "label_en": "Housing tenure",
                "values": vals(
                    [("owner", "Propriétaire", "Owner"), ("tenant", "Locataire", "Tenant")]
                ),
            },
            {
                "key": "dwelling",
                "type": "list",
                "label_fr": "Type de logement",
                "label_en": "Dwelling type",
                "values": vals([("house", "Maison", "House"), ("flat", "Appartement", "Flat")]),
            },
            {
                "key": "children",
                "type": "boolean",
                "label_fr": "Enfants au foyer",
                "label_en": "Children at home",
            },
            {
                "key": "income",
                "type": "list",
                "label_fr": "Tranche de revenus",
                "label_en": "Income band",
                "values": labelled(reference.income()),
            },
            {
                "key": "interests",
                "type": "list",
                "label_fr": "Centres d'intérêt",
                "label_en": "Interests",
                "values": labelled(reference.interests()),
            },
            {
                "key": "exclude",
                "type": "criteria",
                "label_fr": "Exclusion (repoussoir)",
                "label_en": "Exclusion",
                "description": "same shape as the criteria, without exclude",
            },
            {
                "key": "exclusion_files",
                "type": "exclusion_files",
                "label_fr": "Fichiers repoussoirs",
                "label_en": "Exclusion files",
                "description": "ids of your exclusion files (GET /v1/exclusion-files): their "
                "members are left out of the count and of the send",
                "max_items": MAX_EXCLUSION_FILES,
            },
        ],
    }


def fold(text: str) -> str:
    """'Saint-Étienne' -> 'saint etienne': what people type, without accents or hyphens."""
    bare = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in bare if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[-'’]", " ", bare).split())


@cache
def _folded_names() -> Any:
    import polars as pl

    return pl.Series([fold(n) for n in reference.communes()["name"]])


def search_communes(text: str, limit: int = 20) -> list[dict[str, Any]]:
    import polars as pl

    com = reference.communes().with_columns(_folded_names().alias("folded"))
    needle = text.strip().lower()
    hits = com.filter(
        pl.col("folded").str.contains(fold(text), literal=True)
        | pl.col("insee").str.starts_with(needle)
        | pl.col("postcodes").str.contains(needle, literal=True)
    ).sort("population", descending=True)
    return [
        {
            "commune": r["insee"],
            "name": r["name"],
            "department": r["department"],
            "postcodes": r["postcodes"].split("|"),
        }
        for r in hits.head(limit).iter_rows(named=True)
    ]


def describe(criteria: Criteria) -> list[str]:
    """The criteria in words (English labels of the catalogue), one line per criterion, for
    documents people read: "Sex: Woman", "Age: 25 to 60", "Excluding: Income band: ..."."""
    entries = {c["key"]: c for c in catalogue()["criteria"]}
    names = dict(zip(reference.communes()["insee"], reference.communes()["name"], strict=True))

    def listed(key: str, values: list[str]) -> str:
        labels = {v["value"]: v["label_en"] for v in entries[key].get("values", [])}
        if key == "communes":
            labels = {v: f"{names.get(v, v)} ({v})" for v in values}
        words = [labels.get(v, v) for v in values]
        shown = ", ".join(words[:12]) + (f" and {len(words) - 12} more" if len(words) > 12 else "")
        return f"{entries[key]['label_en']}: {shown}"

    def lines(f: _Filters) -> list[str]:
        out: list[str] = []
        for key in type(f).model_fields:
            value = getattr(f, key)
            if value is None or key in ("exclude", "exclusion_files"):
                continue
            if key == "age":
                out.append(f"Age: {value.min} to {value.max}")
            elif key == "radius":
                where = names.get(value.commune, value.commune)
                out.append(f"Within {value.km:g} km of {where} ({value.commune})")
            elif key == "children":
                out.append(f"Children at home: {'yes' if value else 'no'}")
            else:
                out.append(listed(key, value))
        return out

    out = lines(criteria) or ["Everyone eligible in the base"]
    if criteria.exclude is not None:
        out.append("Excluding prospects with " + "; ".join(lines(criteria.exclude)))
    if criteria.exclusion_files:
        n = len(criteria.exclusion_files)
        out.append(f"Excluding the members of {n} exclusion file{'s' if n > 1 else ''}")
    return out
