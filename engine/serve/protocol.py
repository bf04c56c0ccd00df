"""The OpenAI chat.completions and completions wire format: request models and response builders.

No torch and no HTTP here: :func:`parse_chat` and :func:`parse_completion` turn a decoded JSON
body into a validated request (or raise :class:`ServeError` 400 naming the field at fault), and the
``*_response`` / ``*_chunk`` functions build the JSON the OpenAI API answers with. Two options are
ours and travel in the openai client's ``extra_body``: ``self_consistency`` (sample that many
answers and return the majority one), ``calculator`` (evaluate the question's arithmetic and tell
the model the result) and ``logprobs_mode`` (``processed``: logprobs of the distribution each token
is picked from, after the penalties and the grammar mask).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.serve.types import MAX_TOP_LOGPROBS, FinishReason, ServeError, TokenLogprob

#: The most choices (``n``) and self-consistency samples one request may ask for.
MAX_CHOICES = 16
#: The most stop strings, and the longest one, in characters (the OpenAI API allows 4).
MAX_STOP = 4
MAX_STOP_CHARS = 256
#: The temperature of self-consistency samples when the request gives none (the design used 0.7-0.9).
SELF_CONSISTENCY_TEMPERATURE = 0.8

#: Fields of the OpenAI API that this server cannot honour: a request that sets one is refused,
#: never answered as if the field were absent.
UNSUPPORTED = {
    "tools": "tool calls are not supported by this server",
    "tool_choice": "tool calls are not supported by this server",
    "functions": "function calls are not supported by this server",
    "function_call": "function calls are not supported by this server",
    "logit_bias": "logit_bias is not supported by this server",
    "audio": "audio output is not supported by this server",
    "prediction": "predicted outputs are not supported by this server",
    "web_search_options": "web search is not supported by this server",
    "echo": "echo is not supported by this server",
    "suffix": "suffix (insertion) is not supported by this server",
}
#: Fields accepted and ignored: they change nothing in how a model answers.
IGNORED = ("user", "metadata", "store", "service_tier", "parallel_tool_calls", "reasoning_effort", "modalities")


def _valid_text(text: str) -> str:
    # JSON can spell a lone surrogate ("\ud800"), which no tokenizer can encode.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text (it holds a lone surrogate)") from None
    return text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class TextPart(_Strict):
    """One part of a message's content; only text parts exist here."""

    type: Literal["text"]
    text: str


class Message(_Strict):
    """A chat message; ``developer`` is read as ``system``, as the OpenAI API does for older models."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | None = None
    name: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _join_parts(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        texts: list[str] = []
        for index, part in enumerate(value):
            if not isinstance(part, Mapping) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
                raise ValueError(f"only text content parts are supported (got {kind!r})")
            if not isinstance(part.get("text"), str):
                raise ValueError(f"the text of content part {index} must be a string")
            texts.append(TextPart.model_validate(part).text)
        return "".join(texts)

    @field_validator("content", mode="after")
    @classmethod
    def _unicode(cls, value: str | None) -> str | None:
        return None if value is None else _valid_text(value)

    def as_chat(self) -> dict[str, str]:
        """Return ``{"role", "content"}`` as a chat template reads it."""
        role = "system" if self.role == "developer" else self.role
        return {"role": role, "content": self.content or ""}


class StreamOptions(_Strict):
    include_usage: StrictBool = False


class JsonSchemaSpec(_Strict):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Strict):
    """``{"type": "text" | "json_object" | "json_schema", "json_schema": {...}}``."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("json_schema is required with type 'json_schema'")
        return self


class _Request(_Strict):
    """What chat and text completions share."""

    model: str = Field(min_length=1)
    # Strict: a JSON boolean or string is no number (pydantic would read true as 1).
    temperature: StrictFloat | None = Field(None, ge=0.0, le=2.0)
    top_p: StrictFloat | None = Field(None, ge=0.0, le=1.0)
    top_k: StrictInt | None = Field(None, ge=-1)
    max_tokens: StrictInt | None = Field(None, ge=1)
    stop: tuple[str, ...] = ()
    seed: StrictInt | None = Field(None, ge=-(2**63), le=2**64 - 1)
    n: StrictInt = Field(1, ge=1, le=MAX_CHOICES)
    presence_penalty: StrictFloat = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: StrictFloat = Field(0.0, ge=-2.0, le=2.0)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    self_consistency: StrictInt | None = Field(None, ge=1, le=MAX_CHOICES)
    calculator: StrictBool = False
    logprobs_mode: Literal["raw", "processed"] = "raw"
    # Accepted and ignored, or refused with a reason: see IGNORED and UNSUPPORTED.
    user: Any = None
    metadata: Any = None
    store: Any = None
    service_tier: Any = None
    parallel_tool_calls: Any = None
    reasoning_effort: Any = None
    modalities: Any = None
    tools: Any = None
    tool_choice: Any = None
    functions: Any = None
    function_call: Any = None
    logit_bias: Any = None
    audio: Any = None
    prediction: Any = None
    web_search_options: Any = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, value: Any) -> Any:
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError("must be a string or a list of strings")
        if len(items) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop strings are allowed (got {len(items)})")
        if any(not item or len(item) > MAX_STOP_CHARS for item in items):
            raise ValueError(f"each stop string must have 1 to {MAX_STOP_CHARS} characters")
        return tuple(_valid_text(item) for item in items)

    @model_validator(mode="after")
    def _supported(self) -> _Request:
        for name, why in UNSUPPORTED.items():
            value = getattr(self, name, None)
            if value not in (None, False, {}, []) and not (name == "tool_choice" and value == "none"):
                raise ServeError(why, param=name, code="unsupported_parameter")
        if self.modalities not in (None, ["text"]):
            raise ServeError("only text output is supported by this server", param="modalities")
        if self.self_consistency is not None and self.self_consistency > 1 and self.n > 1:
            raise ServeError("self_consistency and n > 1 do not go together: ask for one of them", param="n")
        return self

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def samples(self) -> int:
        """How many sequences to generate: ``n``, or the self-consistency samples."""
        return max(self.n, self.self_consistency or 1)

    def effective_max_tokens(self) -> int | None:
        return self.max_tokens


class ChatRequest(_Request):
    """The body of ``POST /v1/chat/completions``."""

    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: StrictInt | None = Field(None, ge=1)
    logprobs: StrictBool = False
    top_logprobs: StrictInt | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)

    @model_validator(mode="after")
    def _logprobs(self) -> ChatRequest:
        if self.top_logprobs is not None and not self.logprobs:
            raise ServeError("top_logprobs needs logprobs set to true", param="top_logprobs")
        return self

    def effective_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def logprob_count(self) -> int | None:
        """None for no logprobs, else how many alternatives per token."""
        return (self.top_logprobs or 0) if self.logprobs else None


class CompletionRequest(_Request):
    """The body of ``POST /v1/completions``: one prompt, as text or token ids."""

    prompt: str | list[int]
    logprobs: StrictInt | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    best_of: StrictInt | None = None

    @field_validator("prompt", mode="before")
    @classmethod
    def _one_prompt(cls, value: Any) -> Any:
        # The API takes a list of prompts too; one prompt per request keeps choices and usage simple.
        if isinstance(value, list) and value and isinstance(value[0], (str, list)):
            if len(value) != 1:
                raise ValueError("send one prompt per request (a list of prompts is not supported)")
            value = value[0]
        if isinstance(value, list) and not all(isinstance(t, int) and not isinstance(t, bool) for t in value):
            raise ValueError("must be a string or a list of token ids")
        if isinstance(value, (str, list)) and not value:
            raise ValueError("must not be empty")
        return _valid_text(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _best_of(self) -> CompletionRequest:
        if self.best_of not in (None, 1, self.n):
            raise ServeError("best_of is not supported by this server", param="best_of")
        return self

    def logprob_count(self) -> int | None:
        return self.logprobs


Parsed = TypeVar("Parsed", ChatRequest, CompletionRequest)


def parse_request(kind: type[Parsed], body: object) -> Parsed:
    """Validate a decoded JSON body as ``kind``; raise :class:`ServeError` 400 naming the bad field."""
    if not isinstance(body, dict):
        raise ServeError("the request body must be a JSON object")
    try:
        return kind.model_validate(body)
    except ServeError:
        raise
    except ValidationError as err:
        raise _validation_error(err) from None


#: The names pydantic gives union members in an error's location; they are types, not fields.
_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def _validation_error(err: ValidationError) -> ServeError:
    first = err.errors(include_url=False)[0]
    ctx = first.get("ctx") or {}
    inner = ctx.get("error")
    if isinstance(inner, ServeError):  # raised by a model validator: already says what is wrong
        return inner
    # Pydantic names union members in the location (``str``, ``list[int]``); they are not fields.
    loc = [part for part in first["loc"] if isinstance(part, int) or (part.isidentifier() and part not in _TAGS)]
    param = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".") or None
    kind = first["type"]
    if kind == "extra_forbidden":
        return ServeError(f"unrecognized request argument: {param}", param=param)
    if kind == "missing":
        return ServeError(f"missing required parameter: {param}", param=param)
    message = str(first["msg"]).removeprefix("Value error, ")
    return ServeError(f"{param}: {message}" if param else message, param=param)


# -- responses -------------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    """Return a fresh response id such as ``chatcmpl-3f9a...``."""
    return f"{prefix}-{secrets.token_hex(12)}"


def now() -> int:
    return int(time.time())


@dataclass(frozen=True)
class ChoiceResult:
    """One finished choice: its text, the reasoning apart from it (reasoning models), how it ended."""

    index: int
    content: str
    finish_reason: FinishReason
    reasoning: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None


def wire_finish(reason: FinishReason | None) -> str | None:
    # A cancelled sequence is one whose client left; if anything is still sent it reads as a stop.
    return "stop" if reason == "cancelled" else reason


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_logprobs(items: Sequence[TokenLogprob]) -> dict[str, Any]:
    """The ``choices[].logprobs`` of a chat completion: ``{"content": [...], "refusal": None}``."""
    return {
        "content": [
            {
                "token": item.token,
                "logprob": item.logprob,
                "bytes": item.bytes,
                "top_logprobs": [{"token": t.token, "logprob": t.logprob, "bytes": t.bytes} for t in item.top],
            }
            for item in items
        ],
        "refusal": None,
    }


def completion_logprobs(items: Sequence[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """The legacy ``choices[].logprobs`` of a text completion: tokens, their logprobs, offsets."""
    offsets: list[int] = []
    for item in items:
        offsets.append(offset)
        offset += len(item.token)
    return {
        "tokens": [item.token for item in items],
        "token_logprobs": [item.logprob for item in items],
        "top_logprobs": [{t.token: t.logprob for t in item.top} for item in items],
        "text_offset": offsets,
    }


def chat_response(
    response_id: str, created: int, model: str, choices: Sequence[ChoiceResult], counts: tuple[int, int]
) -> dict[str, Any]:
    """A whole ``chat.completion`` object; ``counts`` is (prompt tokens, completion tokens)."""
    rendered = []
    for choice in choices:
        message: dict[str, Any] = {"role": "assistant", "content": choice.content}
        if choice.reasoning is not None:
            message["reasoning_content"] = choice.reasoning
        rendered.append(
            {
                "index": choice.index,
                "message": message,
                "logprobs": None if choice.logprobs is None else chat_logprobs(choice.logprobs),
                "finish_reason": wire_finish(choice.finish_reason),
            }
        )
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": rendered,
        "usage": usage(*counts),
        "system_fingerprint": None,
    }


def completion_response(
    response_id: str, created: int, model: str, choices: Sequence[ChoiceResult], counts: tuple[int, int]
) -> dict[str, Any]:
    """A whole ``text_completion`` object."""
    rendered = [
        {
            "index": choice.index,
            "text": choice.content,
            "logprobs": None if choice.logprobs is None else completion_logprobs(choice.logprobs),
            "finish_reason": wire_finish(choice.finish_reason),
        }
        for choice in choices
    ]
    return {
        "id": response_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": rendered,
        "usage": usage(*counts),
    }


def chat_chunk(
    response_id: str,
    created: int,
    model: str,
    index: int,
    delta: Mapping[str, Any],
    *,
    finish_reason: FinishReason | None = None,
    logprobs: Sequence[TokenLogprob] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``delta`` holds ``role``, ``content`` or ``reasoning_content``."""
    return {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": index,
                "delta": dict(delta),
                "logprobs": None if logprobs is None else chat_logprobs(logprobs),
                "finish_reason": wire_finish(finish_reason),
            }
        ],
    }


def completion_chunk(
    response_id: str,
    created: int,
    model: str,
    index: int,
    text: str,
    *,
    finish_reason: FinishReason | None = None,
    logprobs: Sequence[TokenLogprob] | None = None,
    offset: int = 0,
) -> dict[str, Any]:
    """One streamed ``text_completion`` object."""
    return {
        "id": response_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": index,
                "text": text,
                "logprobs": None if logprobs is None else completion_logprobs(logprobs, offset),
                "finish_reason": wire_finish(finish_reason),
            }
        ],
    }


def usage_chunk(
    response_id: str, created: int, model: str, kind: Literal["chat", "text"], counts: tuple[int, int]
) -> dict[str, Any]:
    """The last chunk of a stream with ``stream_options.include_usage``: no choices, the usage."""
    return {
        "id": response_id,
        "object": "chat.completion.chunk" if kind == "chat" else "text_completion",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage(*counts),
    }


def models_list(model_ids: Sequence[str], created: int, root: str) -> dict[str, Any]:
    """``GET /v1/models``: the base model and each adapter, as vLLM lists LoRA modules."""
    return {
        "object": "list",
        "data": [
            {"id": model_id, "object": "model", "created": created, "owned_by": "routeshell", "root": root}
            for model_id in model_ids
        ],
    }
