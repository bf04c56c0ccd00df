"""The JSON Schema files shipped with routeshell are valid schemas, and each one's validator is built."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from engine.schemas import load_schema, schema_names, validator


def test_the_shipped_schemas_are_found() -> None:
    assert {"plan", "profile", "decision", "events", "planner", "tester"} <= set(schema_names())


@pytest.mark.parametrize("name", schema_names())
def test_each_shipped_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    """validator() trusts the shipped files and does not check them against the metaschema: this does."""
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert validator(name).schema is schema
