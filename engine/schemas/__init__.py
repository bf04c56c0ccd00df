"""JSON Schema files shipped with routeshell, and the one way to load and validate against them."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the parsed schema ``engine/schemas/<name>.schema.json``."""
    text = resources.files(__name__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_names() -> list[str]:
    """Return the names of every shipped schema, sorted."""
    suffix = ".schema.json"
    return sorted(p.name[: -len(suffix)] for p in resources.files(__name__).iterdir() if p.name.endswith(suffix))


@cache
def _registry() -> Any:
    # Every shipped schema by its $id, so that one may $ref another by relative file name.
    from referencing import Registry, Resource

    resources_ = [(load_schema(name)["$id"], Resource.from_contents(load_schema(name))) for name in schema_names()]
    return Registry().with_resources(resources_)


@cache
def validator(name: str) -> Any:
    """Return a cached Draft 2020-12 validator for the named schema.

    The schema is not checked against the metaschema here: the shipped files never change after
    the install, and tests/engine/test_schemas.py checks each of them. Checking at every start cost
    each process 45 ms for the profile schema and 135 ms for the plan's.
    """
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name), registry=_registry())


#: The keywords of an array schema that look at its items.
_ITEM_KEYWORDS = ("items", "prefixItems", "contains", "uniqueItems", "unevaluatedItems")


def bounded_errors(checker: Any, document: Any, key: str) -> list[Any]:
    """The errors ``checker`` (a validator) finds in ``document``, sorted by where they are.

    When the list at ``document[key]`` holds more items than its schema's ``maxItems``, that error
    and those of the document's other keys are returned, and no item is looked at: a list that
    long is refused anyway, and checking each item would take as long as the list is long."""
    schema = checker.schema
    shape = schema.get("properties", {}).get(key) if isinstance(schema, dict) else None
    items = document.get(key) if isinstance(document, dict) else None
    if isinstance(shape, dict) and isinstance(items, list) and len(items) > shape.get("maxItems", len(items)):
        unchecked = {name: value for name, value in shape.items() if name not in _ITEM_KEYWORDS}
        checker = checker.evolve(schema={**schema, "properties": {**schema["properties"], key: unchecked}})
    return sorted(checker.iter_errors(document), key=lambda error: list(error.absolute_path))


def describe_error(error: Any) -> tuple[list[str | int], str]:
    """Turn a jsonschema ``ValidationError`` into (path to the offending key, reason in plain words)."""
    path: list[str | int] = list(error.absolute_path)
    kind = error.validator
    value = error.validator_value
    if kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if extra:
            return [*path, extra[0]], "unknown key"
    if kind == "required":
        missing = [key for key in value if key not in error.instance]
        if missing:
            return [*path, missing[0]], "missing required key"
    if kind == "enum":
        choices = ", ".join(json.dumps(v) for v in value)
        return path, f"must be one of {choices} (got {json.dumps(error.instance)})"
    if kind == "const":
        return path, f"must be {json.dumps(value)} (got {json.dumps(error.instance)})"
    if kind == "type":
        got = "null" if error.instance is None else f"{_json_type(error.instance)} {_short(error.instance)}"
        return path, f"must be of type {value} (got {got})"
    bounds = {
        "minimum": "at least",
        "maximum": "at most",
        "exclusiveMinimum": "greater than",
        "exclusiveMaximum": "less than",
    }
    if kind in bounds:
        return path, f"must be {bounds[kind]} {value} (got {_short(error.instance)})"
    if kind in ("minLength", "maxLength", "minItems", "maxItems"):
        unit = "characters" if kind.endswith("Length") else "items"
        word = "at least" if kind.startswith("min") else "at most"
        return path, f"must have {word} {value} {unit}"
    if kind == "contains":
        wanted = value.get("description", "an item matching " + json.dumps(value)) if isinstance(value, dict) else value
        return path, f"must contain {wanted}"
    if kind == "uniqueItems":
        return path, "must not repeat an item"
    if kind == "pattern":
        if "description" in error.schema:
            return path, f"must be {error.schema['description']} (got {_short(error.instance)})"
        return path, f"does not match the pattern {value} (got {_short(error.instance)})"
    if kind in ("anyOf", "oneOf") and "description" in error.schema:
        return path, f"must be {error.schema['description']} (got {_short(error.instance)})"
    return path, error.message


def pointer(path: list[str | int]) -> str:
    """Return the JSON pointer (RFC 6901) of a path of keys and indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path) or "/"


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _short(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
