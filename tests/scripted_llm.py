"""A scripted OpenAI-compatible chat server on loopback: real HTTP, replies taken from a script.

Tests and bench scripts enqueue steps (a reply, an HTTP status, a stall, a dropped connection...)
and point a client at ``base_url``; each POST to ``/v1/chat/completions`` consumes one step.
Pure standard library, so bench scripts can use it without pytest.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_USAGE: dict[str, int] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
STREAM_PIECES = 8


@dataclass
class Reply:
    """A chat completion. ``dict``/``list`` content is sent as JSON text; ``usage=None`` reports none.

    When the request asked for a stream, the content goes out as server-sent events in about
    ``pieces`` chunks, then a usage chunk (unless ``usage`` is None), then ``data: [DONE]`` (unless
    ``send_done`` is false). ``cut_after`` drops the connection mid-body after that many content
    chunks, as a crashed server would. ``delay_s`` is slept before answering, and ``piece_delay_s``
    before each streamed piece of content.
    """

    content: str | dict[str, Any] | list[Any]
    usage: dict[str, Any] | None = field(default_factory=lambda: dict(DEFAULT_USAGE))
    delay_s: float = 0.0
    finish_reason: str | None = "stop"
    pieces: int = STREAM_PIECES
    send_done: bool = True
    cut_after: int | None = None
    piece_delay_s: float = 0.0
    #: Token logprobs to send with the answer (all with its first piece when streamed), or none.
    logprobs: list[float] | None = None

    def logprobs_body(self) -> dict[str, Any] | None:
        if self.logprobs is None:
            return None
        return {"content": [{"token": "t", "logprob": value, "bytes": [116], "top_logprobs": []}
                            for value in self.logprobs]}  # fmt: skip

    @property
    def text(self) -> str:
        return self.content if isinstance(self.content, str) else json.dumps(self.content)


@dataclass
class Status:
    """An HTTP status with a body: a dict is sent as JSON, a str as text, None as an OpenAI-style error."""

    code: int
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stall:
    """Sleep ``seconds`` (or until the server stops), then close the connection without a reply."""

    seconds: float


@dataclass
class Hold:
    """Wait until the test sets ``event``, then answer with ``then``."""

    event: threading.Event
    then: Step
    timeout_s: float = 60.0


@dataclass
class Drop:
    """Close the connection without sending any response."""


@dataclass
class Raw:
    """Send ``body`` exactly as given, ``repeat`` times over: raw bytes, any status and content type.

    ``chunked`` sends it with chunked encoding and no length (as a stream goes out); otherwise a
    ``Content-Length`` announces the whole. ``sent`` counts the bytes that went out before the
    client stopped reading.
    """

    body: bytes
    content_type: str = "application/json"
    code: int = 200
    repeat: int = 1
    chunked: bool = False
    sent: int = 0


@dataclass
class Trickle:
    """Send a little and then ``piece`` every ``interval_s`` seconds, for ``seconds`` at most (or until
    the client or the server goes away), never finishing.

    ``where`` is what trickles: ``body`` (after a ``Content-Length`` of ``declared`` bytes),
    ``headers`` (after the status line, one header line's worth at a time) or ``stream`` (an
    event stream that sends ``piece`` after its first event: a comment line, say).
    """

    piece: bytes = b" "
    where: str = "body"
    interval_s: float = 0.5
    seconds: float = 60.0
    declared: int = 100_000


@dataclass
class Respond:
    """Choose the step from the request's JSON body."""

    fn: Callable[[dict[str, Any]], Step]


Step = Reply | Status | Stall | Hold | Drop | Respond | Raw | Trickle


class ScriptedLLM:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) serving a script; a context manager.

    ``requests`` holds every request's JSON body in order, with ``_path``, ``_method`` and
    ``_headers`` (names lower-cased) added. ``unexpected`` counts chat requests that found the
    script empty; they get HTTP 500 "script exhausted". ``max_in_flight`` is the most chat requests
    that were being answered at one time. ``models`` answers ``GET /v1/models`` (a model list when
    None).
    """

    def __init__(self) -> None:
        self.models: Step | None = None
        self.requests: list[dict[str, Any]] = []
        self.unexpected = 0
        self.max_in_flight = 0
        self._in_flight = 0
        self._script: deque[Step] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval keeps shutdown, and so each test's teardown, quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="scripted-llm", daemon=True
        )
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedLLM:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Start serving in a daemon thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving, wake stalled handlers, and release the port."""
        self._stopping.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def enqueue(self, *items: Step) -> ScriptedLLM:
        """Append ``items`` to the script; returns self so calls can be chained."""
        with self._lock:
            self._script.extend(items)
        return self

    def pending(self) -> int:
        """Return how many script steps have not been consumed yet."""
        with self._lock:
            return len(self._script)

    def _record(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(record)

    def _enter(self, change: int) -> None:
        with self._lock:
            self._in_flight += change
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _next(self) -> Step | None:
        with self._lock:
            if self._script:
                return self._script.popleft()
            self.unexpected += 1
            return None


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client closing its keep-alive connection, or a test killing one, is not worth a traceback.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _handler_for(llm: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(_ScriptedHandler):
        scripted = llm

    return Handler


class _ScriptedHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 so that streams use chunked encoding and a cut stream is detectably incomplete.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm each reply waits ~40 ms for an ACK.
    disable_nagle_algorithm = True
    scripted: ScriptedLLM

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._read_request()
        if self.path.rstrip("/") == "/v1/models" and self.scripted.models is not None:
            self._perform(self.scripted.models, {})
        elif self.path.rstrip("/") == "/v1/models":
            self._send_json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        else:
            self._send_json(404, _error_body(f"no route for GET {self.path}", 404))

    def do_POST(self) -> None:
        body = self._read_request()
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, _error_body(f"no route for POST {self.path}", 404))
            return
        step = self.scripted._next()
        self.scripted._enter(1)
        try:
            if step is None:
                self._send_json(500, _error_body("script exhausted", 500))
            else:
                self._perform(step, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.scripted._enter(-1)

    def _read_request(self) -> dict[str, Any]:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        if not isinstance(body, dict):
            body = {"_raw": body}
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.scripted._record({**body, "_path": self.path, "_method": self.command, "_headers": headers})
        return body

    def _perform(self, step: Step, body: dict[str, Any]) -> None:
        if isinstance(step, Respond):
            self._perform(step.fn(body), body)
        elif isinstance(step, Hold):
            step.event.wait(step.timeout_s)
            self._perform(step.then, body)
        elif isinstance(step, Stall):
            self.scripted._stopping.wait(step.seconds)
            self.close_connection = True
        elif isinstance(step, Drop):
            self.close_connection = True
        elif isinstance(step, Status):
            self._send_status(step)
        elif isinstance(step, Raw):
            self._send_raw(step)
        elif isinstance(step, Trickle):
            self._send_trickle(step)
        elif body.get("stream"):
            self._send_stream(step, str(body.get("model") or "scripted"))
        else:
            self._send_reply(step, str(body.get("model") or "scripted"))

    def _send_status(self, step: Status) -> None:
        if isinstance(step.body, str):
            payload, kind = step.body.encode(), "text/plain; charset=utf-8"
        else:
            data = _error_body(f"scripted HTTP {step.code}", step.code) if step.body is None else step.body
            payload, kind = json.dumps(data).encode(), "application/json"
        self._send(step.code, payload, kind, step.headers)

    def _send_raw(self, step: Raw) -> None:
        self.send_response(step.code)
        self.send_header("Content-Type", step.content_type)
        if step.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(step.body) * step.repeat))
        self.end_headers()
        for _ in range(step.repeat):
            if step.chunked:
                self._write_chunk(step.body)
            else:
                self.wfile.write(step.body)
            step.sent += len(step.body)
        if step.chunked:
            self._write_chunk(b"")

    def _send_trickle(self, step: Trickle) -> None:
        self.close_connection = True
        if step.where == "headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        else:
            self.send_response(200)
            if step.where == "stream":
                self.send_header("Content-Type", "text/event-stream")
            else:
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(step.declared))
            self.end_headers()
            if step.where == "stream":
                self.wfile.write(b'data: {"choices": [{"delta": {"role": "assistant", "content": ""}}]}\n\n')
        self.wfile.flush()
        ends = time.monotonic() + step.seconds
        while time.monotonic() < ends and not self.scripted._stopping.wait(step.interval_s):
            piece = b"X-Slow: 1\r\n" if step.where == "headers" else step.piece
            self.wfile.write(piece)
            self.wfile.flush()

    def _send_reply(self, step: Reply, model: str) -> None:
        time.sleep(step.delay_s)
        reply: dict[str, Any] = {
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": step.text},
                    "finish_reason": step.finish_reason,
                    "logprobs": step.logprobs_body(),
                }
            ],
        }
        if step.usage is not None:
            reply["usage"] = step.usage
        self._send_json(200, reply)

    def _send_stream(self, step: Reply, model: str) -> None:
        time.sleep(step.delay_s)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        # Real servers send keep-alive comments; clients must skip them.
        self._write_chunk(b": scripted stream\n\n")

        def event(choices: list[dict[str, Any]], **extra: Any) -> None:
            chunk = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "model": model, "choices": choices}
            self._write_chunk(f"data: {json.dumps({**chunk, **extra})}\n\n".encode())

        event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        text = step.text
        size = max(1, math.ceil(len(text) / max(1, step.pieces)))
        for number, start in enumerate(range(0, len(text), size)):
            if step.cut_after is not None and number >= step.cut_after:
                # No terminating chunk: the client sees an incomplete body, as from a crashed server.
                self.close_connection = True
                return
            time.sleep(step.piece_delay_s)
            scored = step.logprobs_body() if number == 0 else None
            event([{"index": 0, "delta": {"content": text[start : start + size]}, "finish_reason": None,
                    "logprobs": scored}])  # fmt: skip
        event([{"index": 0, "delta": {}, "finish_reason": step.finish_reason}])
        if step.usage is not None:
            event([], usage=step.usage)
        if step.send_done:
            self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _send_json(self, code: int, data: Any) -> None:
        self._send(code, json.dumps(data).encode(), "application/json", {})

    def _send(self, code: int, payload: bytes, kind: str, headers: dict[str, str]) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _error_body(message: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": "scripted_llm", "param": None, "code": code}}
