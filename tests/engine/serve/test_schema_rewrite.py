"""The schema rewriting for llguidance: exact where the meaning can be kept, looser otherwise."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.schemas import load_schema
from engine.serve.schema_rewrite import MAX_DEPTH, UnsupportedSchema, decoding_schema


def test_the_decision_roles_become_every_valid_array() -> None:
    rewritten, notes = decoding_schema(load_schema("decision"))
    roles = rewritten["properties"]["roles"]
    original = Draft202012Validator(load_schema("decision")["properties"]["roles"])
    names = ["planner", "builder", "tester", "refactor"]
    every = [list(p) for k in range(0, 6) for p in itertools.product(names, repeat=k)]
    # Exactly the arrays the original allows: the same answer for every array of up to five roles.
    assert sorted(map(tuple, roles["enum"])) == sorted(tuple(a) for a in every if original.is_valid(a))
    assert len(roles["enum"]) == 49
    assert set(roles) == {"enum"}
    assert notes == ["uniqueItems, contains at /properties/roles: decoded as the 49 arrays that validate"]


def test_the_plan_steps_become_one_branch_per_op() -> None:
    plan = load_schema("plan")
    rewritten, notes = decoding_schema(plan)
    step = rewritten["$defs"]["step"]
    assert "allOf" not in step
    ops = plan["$defs"]["step"]["properties"]["op"]["enum"]
    assert [branch["properties"]["op"]["const"] for branch in step["anyOf"]] == ops
    assert step["anyOf"][1]["allOf"] == [{"$ref": "#/$defs/write"}]
    assert notes == ["if/then at /$defs/step: decoded as one anyOf branch per 'op'"]
    # The original is untouched.
    assert "allOf" in plan["$defs"]["step"]
    # Same meaning: both accept and refuse the same steps.
    samples: list[Any] = [
        {"version": 1, "steps": [{"op": "write", "path": "a", "content": ""}]},
        {"version": 1, "steps": [{"op": "write", "path": "a"}]},
        {"version": 1, "steps": [{"op": "mkdir", "path": "a", "content": "x"}]},
        {"version": 1, "steps": [{"op": "run", "argv": ["ls"]}, {"op": "move", "from": "a", "to": "b"}]},
        {"version": 1, "steps": [{"op": "nope"}]},
    ]
    for sample in samples:
        assert Draft202012Validator(rewritten).is_valid(sample) == Draft202012Validator(plan).is_valid(sample)


def test_other_conditionals_and_refused_keywords_are_loosened() -> None:
    schema = {
        "type": "object",
        "properties": {
            "not": {"type": "string", "not": {"const": "x"}},  # a property named "not" stays
            "n": {"if": {"type": "integer"}, "then": {"minimum": 0}, "else": {"type": "string"}},
            "m": {"if": {"type": "integer"}, "then": {"minimum": 0}},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        },
        "propertyNames": {"maxLength": 3},
        "dependentRequired": {"n": ["m"]},
        "unevaluatedProperties": False,
    }
    rewritten, notes = decoding_schema(schema)
    assert rewritten == {
        "type": "object",
        "properties": {
            "not": {"type": "string"},
            "n": {"anyOf": [{"minimum": 0}, {"type": "string"}]},
            "m": {},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
    assert len(notes) == 7
    assert "uniqueItems at /properties/tags: dropped while decoding, checked afterwards" in notes


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$ref": "https://example.com/s.json"}, "$ref at / points outside the schema"),
        ({"properties": {"a": {"$ref": "other.json#/x"}}}, "$ref at /properties/a points outside"),
        ({"$dynamicRef": "#node"}, "$dynamicRef at / is not supported"),
        ({"type": "array", "items": {"enum": [1]}, "contains": {"const": 2}, "maxItems": 2}, "no array satisfies"),
    ],
)
def test_what_cannot_be_rewritten_is_refused(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedSchema, match=message.replace("$", r"\$")):
        decoding_schema(schema)


def test_a_deeply_nested_schema_is_refused() -> None:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(MAX_DEPTH + 5):
        schema = {"type": "array", "items": schema}
    with pytest.raises(UnsupportedSchema, match="nests more than"):
        decoding_schema(schema)


def test_large_item_sets_are_not_enumerated() -> None:
    schema = {"type": "array", "items": {"enum": list(range(20))}, "uniqueItems": True}
    rewritten, notes = decoding_schema(schema)
    assert rewritten == {"type": "array", "items": {"enum": list(range(20))}}
    assert notes == ["uniqueItems at /: dropped while decoding, checked afterwards"]


def test_a_schema_cannot_change_how_the_json_is_laid_out() -> None:
    schema = {"type": "object", "x-guidance": {"whitespace_flexible": True, "lenient": True}}
    assert decoding_schema(schema) == ({"type": "object"}, [])
