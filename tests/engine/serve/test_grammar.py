"""Grammar-constrained JSON with the real nano model and tokenizer: every finished answer parses and validates."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from jsonschema import Draft202012Validator
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, GenerationConfig, PreTrainedTokenizerBase

from engine.schemas import load_schema
from engine.serve.grammar import (
    MAX_SCHEMA_BYTES,
    JsonGrammar,
    allocate_bitmask,
    apply_bitmask,
    compile_response_format,
)
from engine.serve.types import ServeError
from tests.engine.tinyllm.training_support import TrainRun

PROMPT = "def main():\n"
UNIQUE_TAGS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["tags"],
    "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "uniqueItems": True}},
}
BOUNDS_AND_ENUMS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["n", "x", "colour", "ok"],
    "properties": {
        "n": {"type": "integer", "minimum": -3, "maximum": 12},
        "x": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "colour": {"enum": ["red", "green", None, 3]},
        "ok": {"type": "boolean"},
    },
}
#: Values that must be escaped in JSON: a quote, a backslash, a newline, a tab, NUL, and non-ASCII.
AWKWARD = ['say "hi"', "C:\\dir", "two\nlines", "tab\there", "nul\x00", "ü€😀"]
ESCAPES = {"type": "object", "required": ["s", "t"], "properties": {"s": {"enum": AWKWARD}, "t": {"type": "string"}}}


def json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}


@dataclass
class Nano:
    model: Any
    tokenizer: PreTrainedTokenizerBase
    eos_ids: list[int]

    def grammar(self, response_format: dict[str, Any]) -> JsonGrammar:
        grammar = compile_response_format(response_format, self.tokenizer, eos_ids=self.eos_ids)
        assert grammar is not None
        return grammar


@pytest.fixture(scope="module")
def nano(pretrained: tuple[Path, TrainRun]) -> Nano:
    """The session's pretrained nano model, its tokenizer and its end tokens."""
    torch.set_num_threads(1)
    path, _ = pretrained
    eos = GenerationConfig.from_pretrained(path).eos_token_id
    model: Any = AutoModelForCausalLM.from_pretrained(path)
    model.eval()
    return Nano(model, AutoTokenizer.from_pretrained(path), list(eos) if isinstance(eos, list) else [eos])


def decode(
    nano: Nano, grammar: JsonGrammar, *, seed: int | None, max_tokens: int = 160, closers: str = "]}"
) -> tuple[str, bool]:
    """Decode with the model and the grammar's masks; return (text, whether the grammar finished).

    ``seed`` None is greedy, else sampling at temperature 0.9. The nano model writes garbage and
    never closes a string by itself (nor ends a number: add ``,`` to the ``closers`` besides quotes), so a bias that
    grows with the length of the answer draws it towards closing characters, standing in for a
    model that knows JSON; every token still passes the grammar's mask.
    """
    constraint = grammar.new()
    texts = [nano.tokenizer.decode([t]) for t in range(grammar.vocab_size)]
    # A quote closes a string; brackets (and commas, after a number) count half.
    closing = torch.tensor([('"' in t) + 0.5 * any(ch in t for ch in closers) for t in texts])
    generator = torch.Generator().manual_seed(seed or 0)
    bitmask = allocate_bitmask(1, grammar.vocab_size)
    ids = torch.tensor([nano.tokenizer(PROMPT)["input_ids"]])
    cache = DynamicCache(config=nano.model.config)  # filled in place by each forward
    out: list[int] = []
    for step in range(max_tokens):
        with torch.no_grad():
            result = nano.model(ids, cache=cache, use_cache=True)
        logits = result.logits[:, -1, :].float()  # (1, V)
        logits[0, : grammar.vocab_size] += 0.15 * step * closing
        constraint.fill_mask(bitmask, 0)
        apply_bitmask(logits, bitmask, 1)
        if seed is None:
            token = int(logits.argmax())
        else:
            token = int(torch.multinomial(torch.softmax(logits / 0.9, dim=-1), 1, generator=generator))
        if token in nano.eos_ids:
            break
        constraint.consume(token)
        assert constraint.error is None
        out.append(token)
        if constraint.done():
            break
        ids = torch.tensor([[token]])
    return str(nano.tokenizer.decode(out)), constraint.done() or constraint.accepting()


@pytest.mark.parametrize(
    ("schema", "closers"),
    [(load_schema("plan"), "]}"), (load_schema("decision"), "]}"), (BOUNDS_AND_ENUMS, "]},"), (ESCAPES, "]}")],
    ids=["plan", "decision", "bounds", "escapes"],
)
def test_greedy_and_sampled_answers_validate(nano: Nano, schema: dict[str, Any], closers: str) -> None:
    grammar = nano.grammar(json_schema(schema))
    validator = Draft202012Validator(schema)
    for seed in (None, 1, 2):
        text, finished = decode(nano, grammar, seed=seed, closers=closers)
        assert finished, text
        value = json.loads(text)  # strict: a raw control character in a string would fail here
        assert validator.is_valid(value), (text, grammar.check(text))
        assert grammar.check(text) is None


def test_unique_items_are_checked_against_the_original_schema(nano: Nano) -> None:
    grammar = nano.grammar(json_schema(UNIQUE_TAGS))
    assert "uniqueItems" not in json.dumps(grammar.decoding)
    assert grammar.schema == UNIQUE_TAGS
    for seed in (None, 1, 2, 3):
        text, finished = decode(nano, grammar, seed=seed)
        assert finished
        tags = json.loads(text)["tags"]
        expected = None if len(set(tags)) == len(tags) else "/tags: must not repeat an item"
        assert grammar.check(text) == expected
    assert grammar.check('{"tags":["a","a"]}') == "/tags: must not repeat an item"


def allowed_tokens(bitmask: np.ndarray, vocab_size: int) -> list[int]:
    bits = np.unpackbits(bitmask[0].view(np.uint8), bitorder="little")[:vocab_size]
    return [int(t) for t in np.flatnonzero(bits)]


@pytest.mark.parametrize(
    "schema",
    [
        load_schema("plan"),
        load_schema("decision"),
        load_schema("planner"),
        UNIQUE_TAGS,
        BOUNDS_AND_ENUMS,
        ESCAPES,
        {"type": "object"},
    ],
    ids=["plan", "decision", "planner", "unique", "bounds", "escapes", "object"],
)
def test_random_walks_over_allowed_tokens_end_in_valid_json(nano: Nano, schema: dict[str, Any]) -> None:
    grammar = nano.grammar(json_schema(schema))
    validator = Draft202012Validator(grammar.decoding)
    texts = {t: nano.tokenizer.decode([t]) for t in range(grammar.vocab_size)}
    closers = {t for t, text in texts.items() if any(ch in text for ch in '"]}')} | set(nano.eos_ids)
    rng = random.Random(7)
    bitmask = allocate_bitmask(1, grammar.vocab_size)
    for _ in range(25):
        constraint = grammar.new()
        out: list[int] = []
        while not constraint.done():
            assert len(out) < 2000, "the walk did not end"
            constraint.fill_mask(bitmask, 0)
            allowed = allowed_tokens(bitmask, grammar.vocab_size)
            assert allowed, "a live constraint always allows a token"
            preferred = [t for t in allowed if t in closers]
            token = rng.choice(preferred if preferred and rng.random() < 0.3 else allowed)
            if token in nano.eos_ids:
                break
            constraint.consume(token)
            out.append(token)
        text = str(nano.tokenizer.decode(out))
        assert not any(ch < " " for ch in text), repr(text)  # control characters only as escapes
        assert validator.is_valid(json.loads(text)), text


def test_escaped_strings_round_trip(nano: Nano) -> None:
    grammar = nano.grammar(json_schema({"enum": AWKWARD}))
    seen = set()
    for seed in range(12):
        text, finished = decode(nano, grammar, seed=seed, max_tokens=60)
        assert finished
        assert grammar.check(text) is None
        seen.add(json.loads(text))
    assert seen <= set(AWKWARD)
    assert len(seen) > 1


def test_json_object_gives_an_object(nano: Nano) -> None:
    grammar = nano.grammar({"type": "json_object"})
    for seed in (None, 3):
        text, finished = decode(nano, grammar, seed=seed)
        assert finished
        assert isinstance(json.loads(text), dict)
    assert grammar.check("[1]") == "/: must be of type object (got array [1])"
    assert grammar.check("null") == "/: must be of type object (got null)"
    assert str(grammar.check('{"a": ')).startswith("not valid JSON: ")
    assert grammar.check('{"a": NaN}') is not None


def test_text_and_no_format_are_unconstrained(nano: Nano) -> None:
    assert compile_response_format(None, nano.tokenizer) is None
    assert compile_response_format({"type": "text"}, nano.tokenizer) is None


def test_a_schema_is_compiled_once(nano: Nano) -> None:
    first = nano.grammar(json_schema(load_schema("decision")))
    assert nano.grammar(json_schema(load_schema("decision"))) is first


BIG = {"type": "object", "description": "x" * MAX_SCHEMA_BYTES}


@pytest.mark.parametrize(
    ("response_format", "message"),
    [
        ("json", "response_format must be an object"),
        ({"type": "xml"}, "response_format.type must be 'text', 'json_object' or 'json_schema' (got \"xml\")"),
        ({"type": "json_schema"}, "response_format.json_schema must be an object"),
        ({"type": "json_schema", "json_schema": {"schema": {}}}, "json_schema.name must be a string"),
        ({"type": "json_schema", "json_schema": {"name": "a", "schema": {}, "strict": "yes"}}, "strict must be"),
        ({"type": "json_schema", "json_schema": {"name": "a"}}, "json_schema.schema must be a JSON Schema object"),
        (json_schema([{"type": "string"}]), "json_schema.schema must be a JSON Schema object"),  # type: ignore[arg-type]
        (json_schema({"type": "strin"}), "not a valid JSON Schema: /type: 'strin' is not valid"),
        (json_schema({"minimum": "3"}), "not a valid JSON Schema: /minimum: '3' is not of type 'number'"),
        (json_schema({"$ref": "https://example.com/s.json"}), "points outside the schema"),
        (json_schema({"type": "string", "pattern": "^(?=a)"}), "look-around, including look-ahead"),
        (json_schema({"type": "string", "pattern": "(a)\\1"}), "backreferences are not supported"),
        (json_schema({"$dynamicRef": "#node"}), "$dynamicRef at / is not supported"),
        (json_schema(BIG), "larger than 64 KiB"),
    ],
)
def test_bad_formats_are_refused_with_a_400(nano: Nano, response_format: Any, message: str) -> None:
    with pytest.raises(ServeError) as caught:
        compile_response_format(response_format, nano.tokenizer, eos_ids=nano.eos_ids)
    error = caught.value
    assert error.status == 400
    assert error.param == "response_format"
    assert message in str(error)
    assert "\n" not in str(error)
    assert error.body() == {
        "error": {"message": str(error), "type": "invalid_request_error", "param": "response_format", "code": None}
    }


def test_padded_logit_columns_are_never_allowed(nano: Nano) -> None:
    grammar = nano.grammar({"type": "json_object"})
    vocab = grammar.vocab_size
    width = vocab + 100  # an output layer padded past the tokenizer's vocabulary
    for bitmask in (allocate_bitmask(2, vocab), allocate_bitmask(2, width)):
        logits = torch.zeros(2, width)
        logits[:, vocab:] = 1000.0
        grammar.new().fill_mask(bitmask, 1)
        apply_bitmask(logits, bitmask, [1])
        assert torch.equal(logits[0], torch.cat([torch.zeros(vocab), torch.full((100,), 1000.0)]))  # untouched
        allowed = torch.isfinite(logits[1]).nonzero().flatten().tolist()
        assert allowed
        assert max(allowed) < vocab
        assert all(str(nano.tokenizer.decode([t])).lstrip().startswith("{") for t in allowed)
        logits = torch.zeros(2, width)
        apply_bitmask(logits, bitmask, 2, vocab_size=vocab)
        assert torch.isinf(logits[:, vocab:]).all()
        assert torch.isfinite(logits[0, :vocab]).all()  # an all-ones row allows every real token


def test_a_forbidden_token_ends_the_sequence(nano: Nano) -> None:
    constraint = nano.grammar({"type": "json_object"}).new()
    (letter,) = nano.tokenizer("x", add_special_tokens=False)["input_ids"][-1:]
    constraint.consume(letter)
    assert constraint.error
    assert constraint.done()


def test_only_the_named_rows_are_masked(nano: Nano) -> None:
    grammar = nano.grammar({"type": "json_object"})
    bitmask = grammar.allocate_bitmask(3)
    constraint = grammar.new()
    constraint.fill_mask(bitmask, 0)
    constraint.fill_mask(bitmask, 2)
    logits = torch.randn(3, grammar.vocab_size)
    before = logits.clone()
    apply_bitmask(logits, bitmask, [0, 2])
    assert torch.equal(logits[1], before[1])
    assert torch.equal(torch.isfinite(logits[0]), torch.isfinite(logits[2]))
    allowed = torch.isfinite(logits[0])
    assert 0 < int(allowed.sum()) < grammar.vocab_size
    assert torch.equal(logits[0][allowed], before[0][allowed])


BOUNDED = {
    "type": "object",
    "additionalProperties": False,
    "required": ["n", "colour", "ok"],
    "properties": {
        "n": {"type": "integer", "minimum": -3, "maximum": 12},
        "colour": {"enum": ["red", "green", None, 3]},
        "ok": {"type": "boolean"},
    },
}


def test_the_engine_decodes_constrained_and_free_rows_in_one_batch(pretrained: tuple[Path, TrainRun]) -> None:
    from engine.serve.engine import Engine, collect
    from engine.serve.loaded import load_model
    from engine.serve.types import GenerationRequest, SamplingParams

    loaded = load_model(pretrained[0], dtype="fp32")
    grammar = compile_response_format(json_schema(BOUNDED), loaded.tokenizer, eos_ids=loaded.eos_ids)
    plan = compile_response_format(json_schema(load_schema("plan")), loaded.tokenizer, eos_ids=loaded.eos_ids)
    assert grammar is not None
    assert plan is not None
    prompt = tuple(loaded.text_ids(PROMPT))
    engine = Engine(loaded, max_batch=8, max_queue=8)
    engine.start()
    try:
        streams = [
            engine.submit(GenerationRequest(f"c{seed}", prompt, SamplingParams(60, 0.9, seed=seed), grammar=grammar))
            for seed in range(4)
        ]
        streams.append(engine.submit(GenerationRequest("greedy", prompt, SamplingParams(60, 0.0), grammar=grammar)))
        free = engine.submit(GenerationRequest("free", prompt, SamplingParams(20, 0.0)))
        cut = engine.submit(GenerationRequest("cut", prompt, SamplingParams(8, 0.0), grammar=plan))
        for done in map(collect, streams):
            assert done.finish_reason == "stop"
            assert grammar.check(done.text) is None, done.text
        assert collect(free).finish_reason == "length"
        cut_off = collect(cut)
        assert cut_off.finish_reason == "length"
        assert str(plan.check(cut_off.text)).startswith("not valid JSON")
    finally:
        engine.stop()
