"""Grammar-constrained JSON decoding with llguidance: ``response_format`` to a token mask per step.

:func:`compile_response_format` turns an OpenAI ``response_format`` into a :class:`JsonGrammar`
(or None for plain text). The engine then, each decode step, fills one int32 bitmask for the
batch (:meth:`JsonConstraint.fill_mask` per constrained row), masks the logits with
:func:`apply_bitmask`, samples, and tells each constraint its token
(:meth:`JsonConstraint.consume`). A constraint that is :meth:`~JsonConstraint.done` ends its
sequence with finish reason ``stop``.

The answer always parses: the JSON is laid out compactly (no free whitespace, so a model cannot
pad forever) and strings hold only escaped control characters. Keywords llguidance refuses are
rewritten (:mod:`engine.serve.schema_rewrite`); :meth:`JsonGrammar.check` validates the answer
against the schema as the request gave it.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from engine.schemas import describe_error, pointer
from engine.serve.grammar_refusal import one_line, refusal
from engine.serve.schema_check import CheckTooSlow, bounded_validator, place, quoted, within
from engine.serve.schema_rewrite import UnsupportedSchema, decoding_schema
from engine.serve.types import ServeError

if TYPE_CHECKING:
    import torch
    from llguidance import LLMatcher, LLTokenizer

#: The largest schema accepted, as compact JSON.
MAX_SCHEMA_BYTES = 64 * 1024
#: How deeply a schema's JSON may nest (objects and arrays within one another).
MAX_SCHEMA_NESTING = 64
#: Compiled grammars kept per tokenizer, most recently used first: agents send the same schema often.
CACHED_GRAMMARS = 32

#: How llguidance lays out the JSON, whatever the schema's own ``x-guidance`` says: compact, so
#: that a weak model cannot fill its tokens with whitespace, and nothing ignored silently.
_JSON_OPTIONS: dict[str, Any] = {"whitespace_flexible": False, "lenient": False, "coerce_one_of": False}

Bitmask = npt.NDArray[np.int32]


def compile_response_format(
    response_format: Mapping[str, Any] | None,
    tokenizer: Any,
    *,
    eos_ids: Collection[int] | None = None,
) -> JsonGrammar | None:
    """Return the grammar an OpenAI ``response_format`` asks for, or None for plain text.

    ``{"type": "text"}`` and None give None; ``{"type": "json_object"}`` any JSON object;
    ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`` that schema.
    ``tokenizer`` is the model's fast Hugging Face tokenizer and ``eos_ids`` the model's end
    tokens (the tokenizer's ``eos_token_id`` when None), which end a constrained sequence.
    Raise :class:`ServeError` 400 (``param="response_format"``) for a malformed value, an invalid
    or oversized schema, or one llguidance cannot decode with.
    """
    if response_format is None:
        return None
    if not isinstance(response_format, Mapping):
        raise _bad('response_format must be an object such as {"type": "json_object"}')
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return _grammars(tokenizer, eos_ids).get({"type": "object"})
    if kind != "json_schema":
        raise _bad(f"response_format.type must be 'text', 'json_object' or 'json_schema' (got {_short(kind)})")
    spec = response_format.get("json_schema")
    if not isinstance(spec, Mapping):
        raise _bad("response_format.json_schema must be an object with a name and a schema")
    name = spec.get("name")
    if not isinstance(name, str) or not name or len(name) > 64:
        raise _bad("response_format.json_schema.name must be a string of 1 to 64 characters")
    if not isinstance(spec.get("strict", False), bool | None):
        raise _bad("response_format.json_schema.strict must be true or false")
    schema = spec.get("schema")
    if not isinstance(schema, Mapping):
        raise _bad("response_format.json_schema.schema must be a JSON Schema object")
    return _grammars(tokenizer, eos_ids).get(schema)


def compile_schema(schema: Mapping[str, Any], tokenizer: Any, *, eos_ids: Collection[int] | None = None) -> JsonGrammar:
    """Return the grammar of a JSON Schema (cached, as :func:`compile_response_format` compiles it)."""
    return _grammars(tokenizer, eos_ids).get(schema)


class JsonGrammar:
    """A compiled schema: makes one :class:`JsonConstraint` per sequence and checks finished answers.

    ``schema`` is the schema as requested; ``decoding`` what llguidance decodes with; ``notes``
    what the rewriting changed (empty when both are the same).
    """

    def __init__(
        self,
        schema: dict[str, Any],
        decoding: dict[str, Any],
        notes: Sequence[str],
        matcher: LLMatcher,
        vocab_size: int,
    ) -> None:
        self.schema = schema
        self.decoding = decoding
        self.notes = tuple(notes)
        self._matcher = matcher  # never advanced: each sequence decodes with a copy
        self._vocab_size = vocab_size
        self._validator = bounded_validator(schema)
        self._lock = threading.Lock()

    @property
    def vocab_size(self) -> int:
        """The tokenizer's vocabulary size: the bits of one mask row that mean a token."""
        return self._vocab_size

    def allocate_bitmask(self, rows: int) -> Bitmask:
        """Return a bitmask for ``rows`` sequences of this grammar's vocabulary, every token allowed."""
        return allocate_bitmask(rows, self.vocab_size)

    def new(self) -> JsonConstraint:
        """Return the state of one new sequence, at the start of the JSON."""
        with self._lock:  # the HTTP threads compile while the engine thread copies
            return JsonConstraint(self._matcher.deep_copy(), self.vocab_size)

    def check(self, text: str) -> str | None:
        """Return why ``text`` is not JSON valid against the requested schema, or None when it is.

        The reason is one line: ``not valid JSON: ...`` or ``<pointer>: <reason>``.
        """
        try:
            value = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as err:
            return f"not valid JSON: {err}"
        from jsonschema.exceptions import best_match

        try:
            with within():
                error = best_match(self._validator.iter_errors(value))
        except CheckTooSlow as slow:
            return f"the pattern {quoted(str(slow))} took too long to check"
        if error is None:
            return None
        path, reason = describe_error(error)
        return f"{pointer(path)}: {reason}"


class JsonConstraint:
    """One sequence's position in a :class:`JsonGrammar` (the engine's :class:`~engine.serve.types.Constraint`).

    A token the grammar did not allow puts the constraint in an error state (``error`` says why):
    from then on only end tokens are allowed and :meth:`done` is True, so the sequence ends.
    """

    def __init__(self, matcher: LLMatcher, vocab_size: int) -> None:
        self._matcher = matcher
        self._words = (vocab_size + 31) // 32
        self.error: str | None = None

    def fill_mask(self, bitmask: object, row: int) -> None:
        """Write the tokens allowed next into row ``row`` of ``bitmask`` (int32, C-contiguous).

        Words past the tokenizer's vocabulary (a model's padded logits) are cleared: never allowed.
        """
        if not isinstance(bitmask, np.ndarray) or bitmask.dtype != np.int32 or not bitmask.flags["C_CONTIGUOUS"]:
            raise TypeError("the bitmask must be a C-contiguous int32 numpy array (see allocate_bitmask)")
        if bitmask.shape[1] < self._words:
            raise ValueError(f"the bitmask has {bitmask.shape[1]} words per row, the vocabulary needs {self._words}")
        target = bitmask[row]
        target[self._words :] = 0
        # Into the array directly: compute_bitmask() would allocate a bytes object each step.
        self._matcher.unsafe_compute_mask_ptr(target.ctypes.data, self._words * 4)
        if self.error is None and self._matcher.is_error():
            # The lexer may give up here, on a pattern too large for it: the mask then allows only
            # the end tokens, and the error says why.
            self.error = self._matcher.get_error() or "the grammar failed"

    def consume(self, token: int) -> None:
        """Advance past ``token``; a token the grammar forbids leaves the constraint in error."""
        if not self._matcher.consume_token(token) and self.error is None:
            self.error = self._matcher.get_error() or f"token {token} is not allowed here"

    def done(self) -> bool:
        """True once the JSON is complete (only an end token may follow) or the constraint failed."""
        return self._matcher.is_stopped()

    def accepting(self) -> bool:
        """True when the text so far is a complete answer (a number may still grow, an object may not)."""
        return self._matcher.is_accepting()


# -- masking logits ----------------------------------------------------------------------------------


def allocate_bitmask(rows: int, vocab: int) -> Bitmask:
    """Return an int32 bitmask of ``rows`` rows of ``ceil(vocab / 32)`` words, every bit set (all allowed)."""
    return np.full((rows, (vocab + 31) // 32), -1, dtype=np.int32)


def apply_bitmask(
    logits: torch.Tensor, bitmask: Bitmask, rows_used: int | Sequence[int], *, vocab_size: int | None = None
) -> None:
    """Set to ``-inf``, in place, the logits of every token ``bitmask`` disallows.

    ``logits`` is ``(rows, V)``; ``rows_used`` is either a count (rows ``0..n-1`` of both) or the
    indexes of the rows to mask (the same row of ``logits`` and ``bitmask``). Columns past the
    bitmask's bits, and past ``vocab_size`` when given, are masked in those rows: a model's logits
    may be wider than its tokenizer, and a row left all ones would allow the padding.
    A plain unpack and ``masked_fill_``: llguidance's own torch helper compiles a kernel that cost
    far more per token than this on a CPU.
    """
    import torch

    rows = list(range(rows_used)) if isinstance(rows_used, int) else list(rows_used)
    if not rows:
        return
    contiguous = rows == list(range(rows[0], rows[0] + len(rows)))
    words = bitmask[rows[0] : rows[0] + len(rows)] if contiguous else bitmask[rows]  # (n, W) int32
    # Inverted, as little-endian bytes unpacked low bit first: bit j of word i is token 32 * i + j.
    inverted = np.invert(words).astype("<i4", copy=False).view(np.uint8)
    disallowed = torch.from_numpy(np.unpackbits(inverted, axis=1, bitorder="little").view(np.bool_))  # (n, 32W)
    width = min(logits.shape[1], disallowed.shape[1], logits.shape[1] if vocab_size is None else vocab_size)
    disallowed = disallowed[:, :width].to(logits.device)
    # In place on views: indexing logits with a list of rows would copy them out and back.
    targets = [logits[rows[0] : rows[0] + len(rows)]] if contiguous else [logits[row : row + 1] for row in rows]
    masks = [disallowed] if contiguous else [disallowed[i : i + 1] for i in range(len(rows))]
    for target, mask in zip(targets, masks, strict=True):
        target[:, :width].masked_fill_(mask, float("-inf"))
        if logits.shape[1] > width:
            target[:, width:] = float("-inf")


# -- compiling, cached per tokenizer -----------------------------------------------------------------


class _TokenizerGrammars:
    """The llguidance tokenizer of one Hugging Face tokenizer and its recently compiled grammars."""

    def __init__(self, tokenizer: LLTokenizer) -> None:
        self.tokenizer = tokenizer
        self._compiled: OrderedDict[str, JsonGrammar] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, schema: Mapping[str, Any]) -> JsonGrammar:
        try:
            # Not sorted: the order of the properties is the order the model writes them in.
            text = json.dumps(schema, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            raise _bad("response_format.json_schema.schema must be plain JSON") from None
        if len(text.encode()) > MAX_SCHEMA_BYTES:
            raise _bad(f"response_format schema is larger than {MAX_SCHEMA_BYTES // 1024} KiB; send a smaller one")
        with self._lock:
            if text in self._compiled:
                self._compiled.move_to_end(text)
                return self._compiled[text]
        grammar = _compile(json.loads(text), self.tokenizer)
        with self._lock:
            self._compiled[text] = grammar
            while len(self._compiled) > CACHED_GRAMMARS:
                self._compiled.popitem(last=False)
        return grammar


_BY_TOKENIZER: weakref.WeakKeyDictionary[Any, dict[tuple[int, ...], _TokenizerGrammars]] = weakref.WeakKeyDictionary()
_BY_TOKENIZER_LOCK = threading.Lock()


def _grammars(tokenizer: Any, eos_ids: Collection[int] | None) -> _TokenizerGrammars:
    """Return the grammars of ``tokenizer``, building its llguidance tokenizer on first use."""
    if eos_ids is None:
        eos_ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    key = tuple(sorted(eos_ids))
    with _BY_TOKENIZER_LOCK:
        per_eos = _BY_TOKENIZER.setdefault(tokenizer, {})
        if key not in per_eos:
            import llguidance.hf

            per_eos[key] = _TokenizerGrammars(llguidance.hf.from_tokenizer(tokenizer, eos_token=list(key) or None))
        return per_eos[key]


def _compile(schema: dict[str, Any], tokenizer: LLTokenizer) -> JsonGrammar:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for
    from llguidance import LLMatcher

    # The validators recurse several frames per level: a deeper schema is refused before they run.
    if _nesting(schema) > MAX_SCHEMA_NESTING:
        raise _bad(f"response_format schema nests more than {MAX_SCHEMA_NESTING} levels deep; flatten it")
    try:
        validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as err:
        where = place(pointer(list(err.absolute_path)))
        if err.validator == "format" and err.validator_value == "regex" and isinstance(err.instance, str):
            # jsonschema says only "'(' is not a 'regex'"; re's own error says why.
            why = f" ({err.cause.msg} at position {err.cause.pos})" if isinstance(err.cause, re.error) else ""
            raise _bad(
                f"response_format schema: the pattern {quoted(err.instance)} at {where} is not a regular "
                f"expression{why}"
            ) from None
        raise _bad(f"response_format schema is not a valid JSON Schema: {where}: {one_line(err.message)}") from None
    except RecursionError:
        raise _bad("response_format schema nests too deeply; flatten it") from None
    if _keywords(schema) >= {"unevaluatedProperties", "patternProperties"}:
        # jsonschema matches patternProperties for unevaluatedProperties with ``re``, unbounded.
        raise _bad("response_format schema: unevaluatedProperties with patternProperties is not supported")
    try:
        decoding, notes = decoding_schema(schema)
    except UnsupportedSchema as err:
        raise _bad(f"response_format schema cannot be used for constrained decoding: {err}") from None
    try:
        grammar = LLMatcher.grammar_from_json_schema(decoding, overrides=_JSON_OPTIONS)  # type: ignore[arg-type]
        is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
    except (ValueError, TypeError, OverflowError, RuntimeError) as err:
        # llguidance reads numbers as 64-bit: an integer beyond that is refused here.
        is_error, messages = True, [str(err)]
    if is_error:
        raise _bad(refusal(messages[0] if messages else "refused", schema))
    matcher = LLMatcher(tokenizer, grammar, log_level=0)
    if matcher.is_error():
        raise _bad(refusal(matcher.get_error(), schema))
    # A grammar whose language is empty (a $ref that refers only to itself) compiles, and fails
    # at its first token: found here, it is the request's 400, not an empty answer.
    probe = matcher.deep_copy()
    probe.compute_bitmask()
    if probe.is_error():
        raise _bad(
            "response_format schema cannot be used for constrained decoding: no JSON value can be written "
            f"under it (does a $ref refer only to itself?) ({_first(probe)})"
        )
    return JsonGrammar(schema, decoding, notes, matcher, tokenizer.vocab_size)


def _first(matcher: LLMatcher) -> str:
    """The first line of a failed matcher's error (the rest is a dump of its state)."""
    lines = matcher.get_error().strip().splitlines()
    return one_line(lines[0] if lines else "refused")


def _keywords(value: Any) -> set[str]:
    """Every key of every object in JSON ``value``, found without recursion."""
    keys: set[str] = set()
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            keys.update(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return keys


def _nesting(value: Any) -> int:
    """How deeply JSON ``value`` nests (a scalar is 0), measured without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_SCHEMA_NESTING:
                return deepest
            pending.extend((child, depth + 1) for child in item)
    return deepest


def _bad(message: str) -> ServeError:
    return ServeError(message, status=400, param="response_format")


def _short(value: object) -> str:
    return one_line(json.dumps(value, default=str))


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
