"""What one generation asks of the engine and what it yields; shared by the engine and HTTP layers.

Nothing here imports torch: the HTTP layer validates a request into a :class:`GenerationRequest`
before the engine sees it, and reads :class:`Delta` objects back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

#: ``error``: the engine failed on this sequence (``Delta.error`` says why); ``cancelled``: its
#: client went away or the server is stopping.
FinishReason = Literal["stop", "length", "cancelled", "error"]

#: The most top alternatives a request may ask for per token (the OpenAI limit).
MAX_TOP_LOGPROBS = 20

#: How ``Delta.error`` begins when a sequence's grammar failed while decoding (llguidance gave up on
#: the request's schema, say on a pattern too large for its lexer): the request's fault, a 400.
GRAMMAR_FAILED = "the response_format grammar failed while decoding: "


class ServeError(Exception):
    """A request the server refuses: an HTTP status and an OpenAI-style error body.

    ``str(err)`` is the one-line message. ``kind`` is the OpenAI ``error.type``
    (``invalid_request_error``, ``authentication_error``, ``not_found_error``,
    ``rate_limit_error``, ``server_error``); ``param`` names the request field at fault.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.param = param
        self.code = code
        self.retry_after = retry_after

    def body(self) -> dict[str, object]:
        """The JSON error body the OpenAI API returns."""
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}


class Overloaded(ServeError):
    """The queue is full: 503 with ``Retry-After``."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message, status=503, kind="server_error", code="overloaded", retry_after=retry_after)


@dataclass(frozen=True)
class SamplingParams:
    """How to pick each next token. ``temperature == 0`` is greedy; ``top_k == 0`` means no cut."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    #: None: no logprobs; k >= 0: the chosen token's logprob and its k best alternatives.
    logprobs: int | None = None
    #: Whether the logprobs are those of the distribution the token is picked from (after the
    #: penalties and the grammar mask, before temperature, top-k and top-p) rather than the model's own.
    processed_logprobs: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0 or self.top_k == 1


class Constraint(Protocol):
    """One sequence's grammar state (see :mod:`engine.serve.grammar`), used by the engine thread only.

    Before each token the engine asks which tokens are allowed; after sampling it tells the
    constraint which one was taken.
    """

    def fill_mask(self, bitmask: object, row: int) -> None:
        """Write the allowed next tokens into row ``row`` of an int32 numpy bitmask."""

    def consume(self, token: int) -> None:
        """Advance past ``token`` (one that :meth:`fill_mask` allowed)."""

    def done(self) -> bool:
        """True once the grammar is complete: the sequence ends with finish reason ``stop``."""


class ConstraintFactory(Protocol):
    """A compiled grammar, shared by every sequence of a request; makes one :class:`Constraint` each."""

    def new(self) -> Constraint: ...


@dataclass(frozen=True)
class GenerationRequest:
    """One sequence to generate: prompt token ids, sampling, and optionally an adapter and a grammar."""

    request_id: str
    prompt_ids: tuple[int, ...]
    params: SamplingParams
    adapter: str | None = None
    grammar: ConstraintFactory | None = None


@dataclass(frozen=True)
class TopLogprob:
    token: str
    logprob: float
    bytes: list[int]


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token's log probability (under the model, before sampling changes) and its rivals."""

    token: str
    logprob: float
    bytes: list[int]
    top: list[TopLogprob] = field(default_factory=list)


@dataclass(frozen=True)
class Delta:
    """What one decode step added to one sequence.

    ``text`` may be empty while the engine holds back an incomplete UTF-8 character or text that
    may begin a stop string. The last delta of a sequence has ``finish_reason`` set and carries
    the token counts; text after a stop string is never sent.
    """

    text: str
    token_ids: tuple[int, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()
    finish_reason: FinishReason | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
