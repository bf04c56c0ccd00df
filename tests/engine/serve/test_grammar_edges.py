"""Hostile schemas are refused with a 400 naming response_format: never a 500, never an empty answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from engine.serve.grammar import MAX_SCHEMA_NESTING, compile_response_format
from engine.serve.types import ServeError
from tests.engine.tinyllm.training_support import TrainRun


@pytest.fixture(scope="module")
def tokenizer(pretrained: tuple[Path, TrainRun]) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(pretrained[0])


def nested(keyword: str, depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema} if keyword == "items" else {keyword: [schema]}
    return schema


def refused(tokenizer: PreTrainedTokenizerBase, schema: dict[str, Any]) -> ServeError:
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    with pytest.raises(ServeError) as caught:
        compile_response_format(response_format, tokenizer, eos_ids=[2])
    assert (caught.value.status, caught.value.param) == (400, "response_format")
    return caught.value


@pytest.mark.parametrize(("keyword", "depth"), [("items", 300), ("allOf", 300), ("anyOf", 100), ("items", 130)])
def test_a_schema_nested_past_the_validators_stack_is_a_400(
    tokenizer: PreTrainedTokenizerBase, keyword: str, depth: int
) -> None:
    assert "nests more than" in str(refused(tokenizer, nested(keyword, depth)))


def test_a_schema_nested_within_the_limit_compiles(tokenizer: PreTrainedTokenizerBase) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": nested("items", MAX_SCHEMA_NESTING - 1)}}
    assert compile_response_format(schema, tokenizer, eos_ids=[2]) is not None


def test_integers_beyond_64_bits_are_a_400(tokenizer: PreTrainedTokenizerBase) -> None:
    err = refused(tokenizer, {"type": "integer", "minimum": 10**30, "maximum": 10**30 + 5})
    assert "cannot be used for constrained decoding" in str(err)


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
    ],
)
def test_a_schema_that_only_refers_to_itself_is_a_400(tokenizer: PreTrainedTokenizerBase, schema: Any) -> None:
    assert "no JSON value can be written" in str(refused(tokenizer, schema))


CATASTROPHIC = "^(a|a)*b"  # Python's re backtracks 2**n ways over n a's before it gives up
CHECK_SCRIPT = """
import json, sys
from transformers import AutoTokenizer
from engine.serve.grammar import compile_response_format
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
for schema, value in json.loads(sys.argv[2]):
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    grammar = compile_response_format(response_format, tokenizer)
    print(json.dumps(grammar.check(json.dumps(value))))
"""


def test_patterns_of_the_schema_are_matched_in_bounded_time(pretrained: tuple[Path, TrainRun]) -> None:
    """An answer forced by ``const`` and checked against a catastrophic pattern (in ``not``, which
    the grammar cannot enforce, or as a property name) once held the interpreter for hours."""
    import json
    import subprocess
    import sys

    word = "a" * 40 + "!"
    cases = [
        ({"const": word, "not": {"pattern": CATASTROPHIC}}, word),
        ({"type": "object", "patternProperties": {CATASTROPHIC: {}}, "additionalProperties": False}, {word: 1}),
        ({"type": "object", "patternProperties": {CATASTROPHIC: {"type": "string"}}}, {"aab": 1, word: 2}),
    ]
    done = subprocess.run(
        [sys.executable, "-c", CHECK_SCRIPT, str(pretrained[0]), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[3],
    )
    assert done.returncode == 0, done.stderr
    problems = [json.loads(line) for line in done.stdout.splitlines()]
    assert problems[0] is None
    assert problems[1] == f"/{word}: unknown key"
    assert problems[2] == "/aab: must be of type string (got integer 1)"


def test_unevaluated_properties_beside_pattern_properties_is_a_400(tokenizer: PreTrainedTokenizerBase) -> None:
    schema = {"type": "object", "patternProperties": {"^x": {}}, "unevaluatedProperties": False}
    assert "unevaluatedProperties with patternProperties" in str(refused(tokenizer, schema))


LONG = "x" * 400
LOOKAROUND = "look-around, including look-ahead and look-behind, is not supported"


@pytest.mark.parametrize(
    ("schema", "said"),
    [
        # The regex library's message joined into one line, the pattern's reason cut off after it:
        (
            {"type": "object", "properties": {"a": {"type": "string", "pattern": LONG + "(?=a)"}}},
            f'the pattern "{LONG[:80]}..." at /properties/a/pattern cannot be used for constrained decoding: '
            + LOOKAROUND,
        ),
        # "regex parse error: (?=x) ^^^ error: ...", the carets pointing nowhere and no place given:
        (
            {"type": "object", "patternProperties": {"(?=x)": {}}},
            f'the pattern "(?=x)" at /patternProperties cannot be used for constrained decoding: {LOOKAROUND}',
        ),
        # Was "lookarounds not supported yet; WordUnicode in regex /\bx/":
        (
            {"type": "array", "items": {"type": "string", "pattern": r"\bx"}},
            r'the pattern "\\bx" at /items/pattern cannot be used for constrained decoding: a word boundary',
        ),
        # Was "'\x1b(ab' is not a 'regex'", without a reason:
        (
            {"type": "string", "pattern": "\x1b(ab"},
            'the pattern "\\u001b(ab" at /pattern is not a regular expression (missing ), unterminated subpattern',
        ),
        # Was the whole $ref, its escape sequence raw:
        ({"$ref": "http://x\x1b[2J" + "y" * 500}, '$ref at / points outside the schema ("http://x\\u001b[2Jyy'),
    ],
)
def test_a_pattern_or_ref_that_cannot_be_used_is_named_with_its_place_and_why_on_one_bounded_line(
    tokenizer: PreTrainedTokenizerBase, schema: dict[str, Any], said: str
) -> None:
    message = str(refused(tokenizer, schema))
    assert said in message
    assert message.isprintable()
    assert len(message) < 400


@pytest.mark.parametrize(
    ("schema", "said"),
    [
        # Was "Unknown format: no-such-format", with no place, its escape sequence raw:
        (
            {"type": "object", "properties": {"a": {"type": "string", "format": "no\x1b[31m<b>such" + "x" * 400}}},
            'the format "no\\u001b[31m<b>suchxxx',
        ),
        ({"type": "string", "format": "no-such-format"}, 'the format "no-such-format" at /format cannot be used'),
        # Was "Failed to generate regex for integer range: min=Some(9223372036854775807), max=None":
        ({"type": "integer", "minimum": 1e30}, "the minimum 1e+30 at /minimum cannot be used for constrained decoding"),
        # Was "Value is not JSON serializable: 1180591620717411303424":
        (
            {"type": "object", "properties": {"default": {"type": "integer", "maximum": 2**70}}},
            f"the number {2**70} at /properties/default/maximum cannot be used for constrained decoding: it does not "
            "fit in 64 bits",
        ),
        # Was llguidance's own regex for the length, "(?s:.{0,18446744073709551615})", and no place:
        ({"type": "string", "maxLength": 2**64 - 1}, f"the maxLength {2**64 - 1} at /maxLength cannot be used"),
        # Was "Value for 'multipleOf' has too many digits: 1000...000", the number whole:
        ({"type": "number", "multipleOf": 1e300}, "the multipleOf 1e+300 at /multipleOf cannot be used"),
    ],
)
def test_a_format_or_number_that_cannot_be_used_is_named_with_its_place_on_one_bounded_line(
    tokenizer: PreTrainedTokenizerBase, schema: dict[str, Any], said: str
) -> None:
    message = str(refused(tokenizer, schema))
    assert message.startswith("response_format schema: ")
    assert said in message
    assert not any(theirs in message for theirs in ("Unknown format", "serializable", "Some("))
    assert message.isprintable()
    assert len(message) < 400
