"""Rewriting a JSON Schema into one that llguidance can decode with, keeping the meaning where it can.

llguidance 1.9 refuses these keywords outright: ``uniqueItems``, ``contains`` (and ``minContains``,
``maxContains``), ``if``/``then``/``else``, ``not``, ``dependentRequired``, ``dependentSchemas``,
``dependencies``, ``propertyNames``, ``unevaluatedProperties``, ``unevaluatedItems`` and
``$dynamicRef``, besides any ``$ref`` outside the schema. :func:`decoding_schema` rewrites them:

- exactly, where the meaning can be kept: an array whose items come from a small ``enum`` becomes
  the ``enum`` of every array the original allows (so ``uniqueItems`` and ``contains`` hold), and
  ``if``/``then``/``else`` blocks that switch on the ``const`` of one required property (a tagged
  union, as the plan schema's steps are) become an ``anyOf`` with one branch per tag;
- otherwise by loosening: ``if A then B else C`` becomes ``anyOf [B, C]`` (or nothing without an
  ``else``), and every other refused keyword is dropped; each keyword only ever narrows what is
  valid, so dropping one only widens it.

The caller decodes with the rewritten schema and validates the answer against the original one.
Nothing here imports llguidance: the rewriting is plain data.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Iterator
from typing import Any

from engine.serve.schema_check import place, quoted

#: Keywords llguidance refuses whose removal only widens what is valid.
DROPPED_KEYWORDS = (
    "uniqueItems",
    "contains",
    "minContains",
    "maxContains",
    "not",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
)
#: Keywords that cannot be rewritten: dropping a reference would lose the structure it names.
REFUSED_KEYWORDS = ("$dynamicRef", "$recursiveRef")
#: The most arrays one ``enum`` may list when an array schema is rewritten into all its values.
MAX_ENUMERATED = 256
#: How deeply schemas may nest inside one another.
MAX_DEPTH = 64

_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = (
    "additionalProperties",
    "items",
    "additionalItems",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentSchema",
)
#: Keys that say nothing about validity: a schema made only of these and ``enum``/``const`` is finite.
_ANNOTATIONS = frozenset(
    {"description", "title", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly"}
)
_CONDITIONAL_KEYS = frozenset({"if", "then", "else", "description", "$comment"})


class UnsupportedSchema(ValueError):
    """A schema that cannot be decoded with: an external ``$ref``, ``$dynamicRef``, too deep, or unsatisfiable."""


def decoding_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Return ``(rewritten, notes)``: a copy of ``schema`` llguidance accepts, and what was changed.

    ``schema`` must already be a valid JSON Schema. Each note reads ``"<keyword> at <pointer>:
    <what was done>"``. Raise :class:`UnsupportedSchema` for what cannot be rewritten.
    """
    rewritten = copy.deepcopy(schema)
    # x-guidance would let the request change how llguidance lays out the JSON (whitespace, escapes).
    rewritten.pop("x-guidance", None)
    notes: list[str] = []
    _rewrite(rewritten, "", notes, 0)
    return rewritten, notes


def _rewrite(node: Any, path: str, notes: list[str], depth: int) -> None:
    if not isinstance(node, dict):
        return
    if depth > MAX_DEPTH:
        raise UnsupportedSchema(f"the schema nests more than {MAX_DEPTH} levels deep")
    ref = node.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        raise UnsupportedSchema(f"$ref at {place(path)} points outside the schema ({quoted(ref)}); put it under $defs")
    for keyword in REFUSED_KEYWORDS:
        if keyword in node:
            raise UnsupportedSchema(f"{keyword} at {place(path)} is not supported")
    if _enumerate_array(node, path, notes):
        return
    _rewrite_conditionals(node, path, notes)
    for keyword in DROPPED_KEYWORDS:
        if keyword in node:
            del node[keyword]
            notes.append(f"{keyword} at {path or '/'}: dropped while decoding, checked afterwards")
    for child_path, child in _children(node, path):
        _rewrite(child, child_path, notes, depth + 1)


def _children(node: dict[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    for keyword in _SCHEMA_MAPS:
        value = node.get(keyword)
        if isinstance(value, dict):
            for key, child in value.items():
                yield f"{path}/{keyword}/{_escape(key)}", child
    for keyword in _SCHEMA_LISTS:
        value = node.get(keyword)
        if isinstance(value, list):
            for index, child in enumerate(value):
                yield f"{path}/{keyword}/{index}", child
    for keyword in _SCHEMA_ONE:
        value = node.get(keyword)
        if isinstance(value, list):  # draft 7's tuple form of items
            for index, child in enumerate(value):
                yield f"{path}/{keyword}/{index}", child
        else:
            yield f"{path}/{keyword}", value


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


# -- arrays of a few known values ------------------------------------------------------------------


def _enumerate_array(node: dict[str, Any], path: str, notes: list[str]) -> bool:
    """Replace an array schema over a small ``enum`` with the ``enum`` of its valid arrays; True if done.

    Only worth it (and only done) when the array uses a refused keyword: ``["planner", "builder"]``
    with ``uniqueItems`` and ``contains`` then decodes to exactly what validates.
    """
    refused = [k for k in ("uniqueItems", "contains", "minContains", "maxContains") if k in node]
    if node.get("type") != "array" or not refused or "prefixItems" in node or "$ref" in json.dumps(node):
        return False
    values = _finite_values(node.get("items"))
    if values is None:
        return False
    unique = node.get("uniqueItems") is True
    low = node.get("minItems", 0)
    high = node.get("maxItems", len(values) if unique else None)
    if high is None:
        return False
    high = min(high, len(values)) if unique else high
    lengths = range(low, high + 1)
    count = sum(math.perm(len(values), k) if unique else len(values) ** k for k in lengths)
    if count > MAX_ENUMERATED:
        return False
    from engine.serve.schema_check import CheckTooSlow, bounded_validator, within

    check = bounded_validator(node)
    candidates = itertools.chain.from_iterable(
        itertools.permutations(values, k) if unique else itertools.product(values, repeat=k) for k in lengths
    )
    try:
        with within():
            valid = [list(candidate) for candidate in candidates if check.is_valid(list(candidate))]
    except CheckTooSlow as slow:
        raise UnsupportedSchema(f"the pattern {quoted(str(slow))} at {place(path)} takes too long to match") from None
    if not valid:
        raise UnsupportedSchema(f"no array satisfies the schema at {place(path)}")
    kept = {key: value for key, value in node.items() if key in _ANNOTATIONS}
    node.clear()
    node.update(kept, enum=valid)
    notes.append(f"{', '.join(refused)} at {path or '/'}: decoded as the {len(valid)} arrays that validate")
    return True


def _finite_values(items: Any) -> list[Any] | None:
    if not isinstance(items, dict) or set(items) - _ANNOTATIONS - {"enum", "const", "type"}:
        return None
    if "const" in items:
        values = [items["const"]]
    elif isinstance(items.get("enum"), list):
        values = items["enum"]
    else:
        return None
    from jsonschema import Draft202012Validator

    check = Draft202012Validator(items)
    distinct: list[Any] = []
    for value in values:
        if check.is_valid(value) and not any(_same(value, seen) for seen in distinct):
            distinct.append(value)
    return distinct


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# -- if / then / else ------------------------------------------------------------------------------


def _rewrite_conditionals(node: dict[str, Any], path: str, notes: list[str]) -> None:
    """Rewrite the ``if`` blocks of ``node`` (its own and those in its ``allOf``) into ``anyOf``."""
    blocks: list[dict[str, Any]] = []
    if "if" in node or "then" in node or "else" in node:
        blocks.append({key: node.pop(key) for key in ("if", "then", "else") if key in node})
    all_of = node.get("allOf")
    if isinstance(all_of, list):
        kept = []
        for item in all_of:
            if isinstance(item, dict) and "if" in item and set(item) <= _CONDITIONAL_KEYS:
                blocks.append(item)
            else:
                kept.append(item)
        if blocks and len(kept) != len(all_of):
            node["allOf"] = kept
    if not blocks:
        return
    tagged = _tagged_union(node, blocks)
    if tagged is not None:
        key, branches = tagged
        _add_conjunct(node, {"anyOf": branches})
        notes.append(f"if/then at {path or '/'}: decoded as one anyOf branch per {key!r}")
    else:
        for block in blocks:
            if "then" in block and "else" in block:
                _add_conjunct(node, {"anyOf": [block["then"], block["else"]]})
        notes.append(f"if/then/else at {path or '/'}: loosened to anyOf [then, else] while decoding")
    if node.get("allOf") == []:
        del node["allOf"]


def _tagged_union(node: dict[str, Any], blocks: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]] | None:
    """If every block tests ``{"properties": {K: {"const": v}}}`` for one required ``K`` whose values
    are an ``enum``, return ``(K, one branch per value)``: exactly the blocks' meaning."""
    tests = [_const_test(block.get("if")) for block in blocks]
    keys = {test[0] for test in tests if test is not None}
    if None in tests or len(keys) != 1:
        return None
    key = keys.pop()
    required = node.get("required")
    tag = node.get("properties", {}).get(key) if isinstance(node.get("properties"), dict) else None
    if not isinstance(required, list) or key not in required or not isinstance(tag, dict):
        return None
    values = _finite_values(tag)
    if values is None:
        return None
    branches = []
    for value in values:
        conjuncts = []
        for block, test in zip(blocks, tests, strict=True):
            assert test is not None
            branch_key = "then" if _same(test[1], value) else "else"
            if branch_key in block:
                conjuncts.append(block[branch_key])
        branch: dict[str, Any] = {"properties": {key: {"const": value}}}
        if conjuncts:
            branch["allOf"] = conjuncts
        branches.append(branch)
    return key, branches


def _const_test(test: Any) -> tuple[str, Any] | None:
    if not isinstance(test, dict) or set(test) - {"properties", "required", "description", "$comment"}:
        return None
    properties = test.get("properties")
    if not isinstance(properties, dict) or len(properties) != 1:
        return None
    ((key, condition),) = properties.items()
    if test.get("required", [key]) != [key] or not isinstance(condition, dict):
        return None
    if "const" not in condition or set(condition) - _ANNOTATIONS - {"const"}:
        return None
    return key, condition["const"]


def _add_conjunct(node: dict[str, Any], conjunct: dict[str, Any]) -> None:
    if "anyOf" not in node and set(conjunct) == {"anyOf"}:
        node["anyOf"] = conjunct["anyOf"]
    else:
        node.setdefault("allOf", []).append(conjunct)
