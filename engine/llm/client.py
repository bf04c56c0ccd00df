"""An OpenAI-compatible chat client on httpx: retries with backoff, streaming, and token accounting.

Every failure a user can cause ends as one :class:`EndpointError` line (exit code 3) that names the
endpoint and says what to check; the API key never appears in it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal, TypeGuard

from engine.config.profiles import Endpoint
from engine.errors import ExitCode, RouteshellError
from engine.events import UsageCounts
from engine.llm.deadline import Deadline, http_client, within
from engine.llm.wire import ChatMessage, ChatRequest, ResponseFormat, encode_request
from engine.names import display_line
from engine.urls import shown_url

if TYPE_CHECKING:
    # Imported where used instead: httpx's package __init__ loads its CLI, which imports rich,
    # and the engine must stay importable without the UI stack (tests/test_import_hygiene.py).
    import httpx

BACKOFF_BASE_S = 0.5
CHARS_PER_TOKEN = 4
ERROR_BODY_BYTES = 64 * 1024  # an error body is read for its message only
ERROR_EXCERPT_CHARS = 200  # the most of a plain-text error body an error line shows
_BASE_URL_HINT = "check --base-url or the profile's llm.base_url"
_HTML = f"answered with HTML, not a chat completion: is the base URL right? ({_BASE_URL_HINT})"


@dataclass
class Usage:
    """Token counts of one or more calls; ``estimated`` when the server reported none and we guessed."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.estimated or other.estimated,
        )

    def as_dict(self) -> UsageCounts:
        """Return the counts as a JSON-ready dict, total included."""
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens, "estimated": self.estimated}  # fmt: skip


@dataclass(frozen=True)
class ChatReply:
    """The assistant's reply; ``attempts`` counts HTTP attempts (1 means no retry was needed).

    ``defect`` says why the content cannot be used as it stands (cut off at the size limit, not
    valid UTF-8); a caller sends it back for repair like any other invalid reply.
    """

    content: str
    usage: Usage
    model: str
    finish_reason: str | None
    attempts: int
    defect: str | None = None
    #: The sum of the answer's token logprobs, when they were asked for (``logprobs``) and every one
    #: came back as a number no greater than 0; else None.
    logprob: float | None = None


class EndpointError(RouteshellError):
    """The LLM endpoint could not give a usable reply; ``status`` is the last HTTP status, if any."""

    exit_code = ExitCode.ENDPOINT

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Retryable(Exception):
    """One failed attempt worth another try; ``describe(attempts)`` ends the give-up message."""

    def __init__(
        self, describe: Callable[[int], str], *, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__()
        self.describe = describe
        self.retry_after = retry_after
        self.status = status


@dataclass(frozen=True)
class _Parsed:
    content: str
    usage: Any
    model: str | None
    finish_reason: str | None
    defect: str | None = None
    logprob: float | None = None


class _CappedReader:
    """Reads one response body up to ``limit`` bytes, decoding UTF-8 and noting what was wrong with it.

    ``cut`` is set when the body went past the limit (nothing after it is read: the connection is
    closed instead); ``invalid`` when bytes were not UTF-8 or a string held half a character.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.cut = False
        self.invalid = False
        self.pieces: list[str] = []

    def chunks(self, response: httpx.Response) -> Iterator[bytes]:
        """Yield the body's bytes until the limit; a ``Content-Length`` over it is refused unread."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            self.cut = True
            return
        received = 0
        for chunk in response.iter_bytes():
            if received + len(chunk) > self.limit:
                self.cut = True
                yield chunk[: self.limit - received]
                return
            received += len(chunk)
            yield chunk

    def read_all(self, response: httpx.Response) -> bytes:
        """Return the body, at most ``limit`` bytes of it."""
        return b"".join(self.chunks(response))

    def lines(self, response: httpx.Response) -> Iterator[str]:
        """Yield the body's lines, decoded, without their line ends."""
        pending = b""
        for chunk in self.chunks(response):
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                yield self.decode(line).rstrip("\r")
        if pending and not self.cut:
            yield self.decode(pending).rstrip("\r")

    def decode(self, data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.invalid = True
            return data.decode("utf-8", "replace")

    def clean(self, text: str) -> str:
        """Return ``text`` with lone surrogates (a JSON-escaped half of a character) as U+FFFD."""
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            self.invalid = True
            return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return text

    def defect(self) -> str | None:
        """What makes the reply unusable as it stands, for the repair request; None when nothing."""
        if self.cut:
            return (
                f"the reply was cut off at {self.limit} bytes, the most a reply may hold "
                "(the profile's llm max_reply_bytes); send a shorter reply"
            )
        if self.invalid:
            return "the reply is not valid UTF-8 (bytes or half a character that were replaced by U+FFFD)"
        return None


class ChatClient:
    """A synchronous client for one endpoint's ``/chat/completions``; use it as a context manager.

    ``transport`` replaces httpx's network transport, ``sleep`` is called with each backoff wait,
    and ``max_wait_s`` caps every wait, ``Retry-After`` included.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_s: float = 60.0,
    ) -> None:
        self._endpoint = endpoint
        self._base = endpoint.base_url.rstrip("/")
        self._url = f"{self._base}/chat/completions"
        self._sleep = sleep
        self._max_wait_s = max_wait_s
        headers = {} if endpoint.api_key is None else {"Authorization": f"Bearer {endpoint.api_key}"}
        self._client = http_client(endpoint.timeout_s, headers=headers, transport=transport)
        self._timeout = self._client.timeout

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        response_format: ResponseFormat | None = None,
        stream: bool = False,
        on_delta: Callable[[str], None] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        logprobs: Literal["raw", "processed"] | None = None,
    ) -> ChatReply:
        """Send ``messages`` and return the reply, retrying 429s, 5xx and network failures.

        With ``stream`` the reply arrives as server-sent events and ``on_delta`` gets each piece of
        content as it comes; without it ``on_delta`` gets the whole content once. A reply over the
        endpoint's ``max_reply_bytes`` is cut off there, and one that is not valid UTF-8 is decoded
        with U+FFFD in place of the bad bytes: both come back with ``defect`` saying so.
        ``logprobs`` asks for the answer's token logprobs (``processed``: routeshell's own server gives
        those of what each token was picked from, after its grammar) and sums them into the reply's
        ``logprob``. Raises :class:`EndpointError` when no usable reply can be had.
        """
        body: ChatRequest = {"model": self._endpoint.model, "messages": list(messages)}
        if response_format is not None:
            body["response_format"] = response_format
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if logprobs is not None:
            body["logprobs"] = True
            if logprobs == "processed":
                body["logprobs_mode"] = "processed"
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        try:
            return self._chat(body, messages, stream, on_delta, logprobs)
        except EndpointError as exc:
            # A server that does not know routeshell's extension (another server, or an older
            # routeshell one) refuses it: the answer is asked again without, and comes unscored.
            if exc.status != 400 or "logprobs_mode" not in str(exc) or "logprobs_mode" not in body:
                raise
        del body["logprobs_mode"]
        return dataclasses.replace(self._chat(body, messages, stream, on_delta, logprobs), logprob=None)

    def _chat(
        self,
        body: ChatRequest,
        messages: Sequence[ChatMessage],
        stream: bool,
        on_delta: Callable[[str], None] | None,
        logprobs: Literal["raw", "processed"] | None,
    ) -> ChatReply:
        import httpx

        payload = encode_request(body)
        most = self._endpoint.max_retries + 1
        for attempt in range(1, most + 1):
            try:
                parsed = self._exchange(payload, stream, on_delta)
            except (httpx.InvalidURL, httpx.HTTPError) as exc:
                raise self._error(f"failed: {_why(exc)}; {_BASE_URL_HINT}") from None
            except _Retryable as failure:
                if attempt == most:
                    raise self._error(failure.describe(attempt), status=failure.status) from None
                self._sleep(self._wait(attempt, failure.retry_after))
                continue
            return ChatReply(
                content=parsed.content,
                usage=_usage(parsed.usage, messages, parsed.content),
                model=parsed.model or self._endpoint.model,
                finish_reason=parsed.finish_reason,
                attempts=attempt,
                defect=parsed.defect,
                logprob=parsed.logprob if logprobs is not None else None,
            )
        raise AssertionError("unreachable: the loop returns or raises")

    def _exchange(self, payload: bytes, stream: bool, on_delta: Callable[[str], None] | None) -> _Parsed:
        """One attempt: send the request and read at most ``max_reply_bytes`` of the answer.

        The whole of a plain reply must come within the endpoint's ``timeout_s``; a streamed one
        must bring its first text within it, and then never go longer without more text.
        """
        import httpx

        reader = _CappedReader(self._endpoint.max_reply_bytes)
        try:
            headers = {"Content-Type": "application/json"}
            with (
                within(self._endpoint.timeout_s) as deadline,
                self._client.stream("POST", self._url, content=payload, headers=headers) as response,
            ):
                if not response.is_success:
                    self._check_status(response, _CappedReader(ERROR_BODY_BYTES).read_all(response))
                kind = response.headers.get("content-type", "").lower()
                if stream and not kind.startswith(("application/json", "text/html")):
                    return self._read_events(response, reader, on_delta, deadline)
                # Without a stream, or from a server that ignores "stream" and answers with one plain reply.
                parsed = self._parse_reply(reader.read_all(response), kind, reader)
        except httpx.TransportError as exc:
            if reader.pieces:
                count = sum(len(piece) for piece in reader.pieces)
                raise self._error(f"stream broke after {count} characters ({_why(exc)}); try again") from None
            raise self._transport_failure(exc) from None
        if on_delta is not None and parsed.content:
            on_delta(parsed.content)
        return parsed

    def _read_events(
        self,
        response: httpx.Response,
        reader: _CappedReader,
        on_delta: Callable[[str], None] | None,
        deadline: Deadline,
    ) -> _Parsed:
        usage: Any = None
        model: str | None = None
        finish_reason: str | None = None
        done = False
        first = ""
        logprob: float | None = 0.0
        scored = False  # whether any event had logprobs: none at all is no certainty
        for line in reader.lines(response):
            first = first or line.strip()
            # Comments, blank lines and "event:"/"id:" fields carry nothing we use.
            if not line.startswith("data:"):
                continue
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                raise self._malformed(f"stream event is not JSON: {data[:60]!r}") from None
            if not isinstance(chunk, dict):
                raise self._malformed(f"stream event is not an object: {data[:60]!r}")
            if "error" in chunk:
                raise self._error(f"sent an error in the stream: {_error_text(chunk) or 'no details'}")
            model = chunk.get("model") or model
            usage = chunk.get("usage") or usage
            choices = chunk.get("choices")
            choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
            delta = choice.get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(delta, dict) and any(
                isinstance(delta.get(key), str) and delta[key] for key in ("content", "reasoning_content")
            ):
                # Text (an answer or its reasoning) is progress; comments, blank lines and empty
                # events are not, so a server that only keeps the connection busy still times out.
                deadline.extend()
            if isinstance(piece, str) and piece:
                piece = reader.clean(piece)
                reader.pieces.append(piece)
                if on_delta is not None:
                    on_delta(piece)
            finish_reason = choice.get("finish_reason") or finish_reason
            if choice.get("logprobs") is not None and logprob is not None:
                logprob, scored = _summed_logprobs(choice["logprobs"], logprob), True
        if first.startswith("<") and not reader.pieces:
            # An HTML page served as text/plain (or without a type) to a streaming request.
            raise self._error(_HTML)
        if not done and not reader.pieces and finish_reason is None and not reader.cut:
            raise _Retryable(lambda n: f"ended the stream before any content after {_count(n)}; {_BASE_URL_HINT}")
        return _Parsed(
            "".join(reader.pieces), usage, model, finish_reason, reader.defect(), logprob if scored else None
        )

    def _check_status(self, response: httpx.Response, data: bytes) -> None:
        status = response.status_code
        if response.is_success:
            return
        kind = response.headers.get("content-type", "").lower()
        detail = (
            _error_text(_json_or_none(data))
            or _text_excerpt(data, kind)
            or display_line(response.reason_phrase)
            or "no details"
        )
        if status == 429 or status >= 500:
            wait = _retry_after(response.headers.get("retry-after")) if status in (429, 503) else None
            raise _Retryable(
                lambda n: f"answered HTTP {status} after {_count(n)}: {detail}", retry_after=wait, status=status
            )
        if status in (401, 403):
            refused = "no API key was sent; set" if self._endpoint.api_key is None else "the API key was refused; check"
            hint = f"{refused} OPENAI_API_KEY or the profile's api_key"
            raise self._error(f"answered HTTP {status}: {detail}; {hint}", status=status)
        if status == 404:
            hint = f"check the profile's llm.base_url and model ({self._endpoint.model!r})"
            raise self._error(f"answered HTTP 404: {detail}; {hint}", status=status)
        raise self._error(f"rejected the request with HTTP {status}: {detail}", status=status)

    def _parse_reply(self, raw: bytes, kind: str, reader: _CappedReader) -> _Parsed:
        if reader.cut:
            # Half a JSON document holds no content worth keeping: the repair asks for a shorter one.
            return _Parsed("", None, None, "length", reader.defect())
        text = reader.decode(raw)
        if "html" in kind or text.lstrip()[:1] == "<":
            raise self._error(_HTML)
        try:
            data = json.loads(text)
        except ValueError:
            raise self._malformed(f"not JSON (starts with {text[:60]!r})") from None
        except RecursionError:
            raise self._malformed("JSON nested too deeply") from None
        try:
            choice = data["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise self._malformed("no choices[0].message.content") from None
        if not isinstance(content, str):
            raise self._malformed("choices[0].message.content is not a string")
        logprob = _summed_logprobs(choice.get("logprobs"), 0.0)
        return _Parsed(reader.clean(content), data.get("usage"), data.get("model"), choice.get("finish_reason"),
                       reader.defect(), logprob)  # fmt: skip

    def _transport_failure(self, exc: httpx.TransportError) -> _Retryable | EndpointError:
        import httpx

        if isinstance(exc, httpx.UnsupportedProtocol):
            return self._error(f"is not an http(s) URL; {_BASE_URL_HINT}")
        if isinstance(exc, httpx.TimeoutException):
            limit = self._timeout.connect if isinstance(exc, httpx.ConnectTimeout) else self._endpoint.timeout_s
            setting = self._endpoint.timeout_setting
            raise_it = f" (raise {setting})" if setting else ""
            return _Retryable(
                lambda n: f"timed out after {limit:g} s ({_count(n)}); is the server overloaded?{raise_it}"
            )
        why = _why(exc)
        if isinstance(exc, httpx.ConnectError):
            return _Retryable(
                lambda n: f"is unreachable ({why}) after {_count(n)}; is the server running? ({_BASE_URL_HINT})"
            )
        return _Retryable(lambda n: f"dropped the connection ({why}) after {_count(n)}; {_BASE_URL_HINT}")

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._max_wait_s)
        # Jitter keeps clients that failed together from retrying in lockstep.
        backoff = BACKOFF_BASE_S * 2.0 ** min(attempt - 1, 30) * random.uniform(1.0, 1.1)
        return min(backoff, self._max_wait_s)

    def _malformed(self, detail: str) -> EndpointError:
        return self._error(f"sent a malformed reply: {detail}; is it an OpenAI-compatible endpoint? ({_BASE_URL_HINT})")

    def _error(self, tail: str, *, status: int | None = None) -> EndpointError:
        message = _one_line(f"LLM endpoint {shown_url(self._base)} {tail}")
        # Servers may echo the key back (OpenAI does in 401s).
        return EndpointError(redacted(message, self._endpoint.api_key), status=status)


def redacted(message: str, api_key: str | None) -> str:
    """``message`` with ``api_key`` masked wherever it stands as a word of its own: a server may
    echo the key, and it must not reach logs or screens; a short key inside a longer word ("k" in
    "check") is not the key."""
    if not api_key:
        return message
    return re.sub(rf"(?<![\w-]){re.escape(api_key)}(?![\w-])", "****", message)


#: The most tokens one reply may say it used and be believed (far beyond any context): a count
#: past it, negative, or not an integer is no count, and the reply's usage is estimated instead.
#: A server could otherwise lower a run's total below its --max-cost-tokens, or overflow what
#: the session database holds (a signed 64-bit integer).
MAX_REPORTED_TOKENS = 1 << 40


def _is_token_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_REPORTED_TOKENS


def _usage(raw: Any, messages: Sequence[ChatMessage], content: str) -> Usage:
    if isinstance(raw, dict):
        prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
        if _is_token_count(prompt) and _is_token_count(completion):
            return Usage(prompt, completion)
    prompt_chars = sum(_text_length(message.get("content")) for message in messages)
    return Usage(math.ceil(prompt_chars / CHARS_PER_TOKEN), math.ceil(len(content) / CHARS_PER_TOKEN), True)


def _text_length(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(
            len(part["text"]) for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return 0


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if unusable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _error_text(data: Any) -> str:
    """The server's own words from an error body: OpenAI's ``error.message`` or the usual variants."""
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    for candidate in (
        error.get("message") if isinstance(error, dict) else error,
        data.get("message"),
        data.get("detail"),
    ):
        if isinstance(candidate, str) and candidate.strip():
            # The server's words reach a terminal: control characters and escapes are shown, not sent.
            return display_line(_one_line(candidate, limit=200))
    return ""


def _text_excerpt(data: bytes, kind: str) -> str:
    """The start of an error body without a message where :func:`_error_text` looks (a proxy's or a
    framework's words in plain text), on one line and escaped; "" for an HTML page or an empty body."""
    text = data.decode("utf-8", "replace").strip()
    if "html" in kind or text[:1] == "<":
        return ""
    return display_line(_one_line(text, limit=ERROR_EXCERPT_CHARS))


def _why(exc: BaseException) -> str:
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)).strip().rstrip(".") or type(exc).__name__
    return display_line(_one_line(text[:1].lower() + text[1:], limit=120))


def _one_line(text: str, *, limit: int = 1000) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _count(attempts: int) -> str:
    return f"{attempts} attempt" if attempts == 1 else f"{attempts} attempts"


def _summed_logprobs(found: Any, so_far: float) -> float | None:
    """``so_far`` plus the logprobs of a choice's ``logprobs.content``; None when they are missing or
    any is not a number no greater than 0 (a server is not trusted to send sane ones)."""
    content = found.get("content") if isinstance(found, dict) else None
    if not isinstance(content, list):
        return None
    total = so_far
    for item in content:
        value = item.get("logprob") if isinstance(item, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -math.inf < value <= 0:
            return None
        total += value
    return total
