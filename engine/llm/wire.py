"""The OpenAI chat-completions wire format, as typed dicts: what a client sends and a server answers.

The client in :mod:`engine.llm.client` speaks it, and a server that serves a model over HTTP can
take the same types for its request and response models. Only the fields routeshell reads or
writes are declared; servers may send more, and a reader must ignore what it does not know.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NotRequired, Required, TypedDict

MessageRole = Literal["system", "user", "assistant", "tool"]


class ChatMessage(TypedDict):
    """One message of the conversation."""

    role: MessageRole
    content: str


class JsonSchemaFormat(TypedDict):
    """``response_format.json_schema``: the schema a reply should satisfy."""

    name: str
    schema: dict[str, Any]
    strict: NotRequired[bool]


class ResponseFormat(TypedDict):
    """``response_format``: ``{"type": "json_schema", "json_schema": {...}}`` or ``{"type": "json_object"}``."""

    type: Literal["json_schema", "json_object", "text"]
    json_schema: NotRequired[JsonSchemaFormat]


class StreamOptions(TypedDict):
    include_usage: bool


class ChatRequest(TypedDict, total=False):
    """The body of ``POST /chat/completions``."""

    model: Required[str]
    messages: Required[list[ChatMessage]]
    response_format: ResponseFormat
    temperature: float
    max_tokens: int
    stream: bool
    stream_options: StreamOptions
    logprobs: bool
    #: routeshell's own server: logprobs of what each token is picked from ("processed").
    logprobs_mode: Literal["raw", "processed"]


class UsageCounts(TypedDict, total=False):
    """Token counts as a server reports them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ReplyMessage(TypedDict):
    role: Literal["assistant"]
    content: str | None


class Choice(TypedDict):
    index: int
    message: ReplyMessage
    finish_reason: str | None


class ChatResponse(TypedDict):
    """A whole (non-streamed) reply."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: NotRequired[UsageCounts]


class Delta(TypedDict, total=False):
    """The new part of a streamed message."""

    role: Literal["assistant"]
    content: str


class ChunkChoice(TypedDict):
    index: int
    delta: Delta
    finish_reason: str | None


class ChatChunk(TypedDict):
    """One server-sent event of a streamed reply (``data: {...}``); the last may carry only ``usage``."""

    id: str
    object: Literal["chat.completion.chunk"]
    model: str
    choices: list[ChunkChoice]
    usage: NotRequired[UsageCounts]


class ErrorDetail(TypedDict, total=False):
    message: Required[str]
    type: str
    param: str | None
    code: int | str | None


class ErrorResponse(TypedDict):
    """An error body: ``{"error": {"message": ...}}``."""

    error: ErrorDetail


def encode_request(request: ChatRequest) -> bytes:
    """Return ``request`` as UTF-8 JSON bytes, whatever its strings hold.

    A lone surrogate (from an undecodable file name or argument, carried by ``surrogateescape``)
    cannot be encoded as UTF-8 and many servers reject it escaped; it is sent as U+FFFD instead.
    """
    text = json.dumps(request, ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")
