"""Requests built from the service's own OpenAPI document, so that a test reaches every route,
parameter and body field, those added later included."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Leaf = Callable[[dict[str, Any]], Any]
CHOICES = re.compile(r"^\^\(([\w|]+)\)\$$")  # a pattern such as ^(delivered|failed)$


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]
    doc: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"

    def params(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p["in"] == where]

    @property
    def body(self) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        media = content.get("application/json")
        return deref(self.doc, media["schema"]) if media else None

    def key_headers(self) -> list[str]:
        """The headers of the operation's API-key security schemes (e.g. a carrier's secret)."""
        schemes = self.doc.get("components", {}).get("securitySchemes", {})
        names = [n for req in self.spec.get("security", self.doc.get("security", [])) for n in req]
        return [
            schemes[n]["name"]
            for n in names
            if schemes.get(n, {}).get("type") == "apiKey" and schemes[n].get("in") == "header"
        ]

    @property
    def secured(self) -> bool:
        return bool(self.spec.get("security", self.doc.get("security")))

    def url(self, path_values: dict[str, Any]) -> str:
        url = self.path
        for p in self.params("path"):
            url = url.replace("{" + p["name"] + "}", str(path_values[p["name"]]))
        return url


def operations(doc: dict[str, Any]) -> list[Operation]:
    return [
        Operation(method, path, spec, doc)
        for path, item in doc["paths"].items()
        for method, spec in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def deref(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def options(doc: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives of a schema (anyOf/oneOf), `null` last."""
    schema = deref(doc, schema)
    alts = schema.get("anyOf") or schema.get("oneOf")
    if not alts:
        return [schema]
    resolved = [deref(doc, a) for a in alts]
    return sorted(resolved, key=lambda s: s.get("type") == "null")


def plain(schema: dict[str, Any]) -> Any:
    """A value of the right type, for the positions a test does not aim at."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if schema.get("format") == "date-time":
        return "2030-01-01T10:00:00+01:00"
    if schema.get("format") == "date":
        return "2030-01-01"
    choices = CHOICES.match(schema.get("pattern", ""))
    return choices.group(1).split("|")[0] if choices else "abc"


def fill(
    doc: dict[str, Any],
    schema: dict[str, Any],
    string: Leaf,
    other: Leaf = plain,
    extra_key: str | None = None,
    depth: int = 0,
) -> Any:
    """A value of `schema` with `string(schema)` at every string position (every property of
    every object, one item in every list) and `other(schema)` elsewhere; with `extra_key`,
    every object also carries a property (or a key) of that name."""
    schema = options(doc, schema)[0]
    if "allOf" in schema:
        schema = {k: v for s in schema["allOf"] for k, v in deref(doc, s).items()}
    kind = schema.get("type")
    if depth > 6:
        return other(schema)
    if kind == "object" or "properties" in schema:
        out = {
            name: fill(doc, sub, string, other, extra_key, depth + 1)
            for name, sub in schema.get("properties", {}).items()
        }
        more = schema.get("additionalProperties")
        if isinstance(more, dict) and extra_key is not None:
            out[extra_key] = fill(doc, more, string, other, extra_key, depth + 1)
        elif extra_key is not None:
            out[extra_key] = string({"type": "string"})
        return out
    if kind == "array":
        return [fill(doc, schema.get("items", {}), string, other, extra_key, depth + 1)]
    if kind == "string" and "enum" not in schema:
        return string(schema)
    return other(schema)


def json_body(value: Any) -> bytes:
    """JSON as a careless or hostile client may send it: lone surrogates as `\\ud800`."""
    return json.dumps(value, ensure_ascii=True).encode()


def string_params(op: Operation, where: str) -> Iterator[dict[str, Any]]:
    for p in op.params(where):
        if any(s.get("type") == "string" for s in options(op.doc, p["schema"])):
            yield p
