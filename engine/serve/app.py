"""The HTTP layer: a FastAPI app serving the OpenAI API over one loaded model and its engine.

``/v1/models``, ``/v1/chat/completions`` and ``/v1/completions`` (non-streaming, or server-sent
events ending with ``data: [DONE]``) need the bearer API key when one is set; ``/health`` and
``/metrics`` are open. Every refusal is an OpenAI error body with a 4xx status (400 bad input,
401 key, 404 unknown model, 408 body too slow, 413 body too large, 415 compressed body, 422 an
answer that fails its schema, 503 queue full with ``Retry-After``); anything unexpected is logged
and answered 500 without details.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.serve import protocol
from engine.serve.metrics import CONTENT_TYPE, ServeMetrics
from engine.serve.protocol import ChatRequest, CompletionRequest
from engine.serve.serving import Job, Serving, Tally
from engine.serve.types import ServeError

if TYPE_CHECKING:
    from engine.model_events import ServeRequestEvent
    from engine.serve.engine import EngineApi, Stream
    from engine.serve.loaded import LoadedModel

log = logging.getLogger("routeshell.serve")

#: The largest request body accepted, in bytes (413 beyond it).
MAX_BODY_BYTES = 1 << 20
#: A body larger than this is cut off at once; up to it, the rest is read and dropped so that the
#: client, still sending, gets the 413 rather than a broken connection.
DRAIN_LIMIT_BYTES = 64 << 20
#: Seconds a request has, from when the server starts to read its body, to send all of it (408 after):
#: a body that never ends would otherwise hold its connection, and a file descriptor, forever.
BODY_TIMEOUT_S = 10.0
#: The most digits an integer in a request body may have: far beyond any field's range (a seed has
#: 20), and short enough that reading it as a number costs nothing.
MAX_INT_DIGITS = 1000
#: How deep a request body may nest (objects and arrays): far beyond any schema a client sends,
#: and shallow enough that nothing which walks the request recursively can run out of stack.
MAX_JSON_DEPTH = 128
#: The status logged for a client that left before its answer (nginx's "client closed request").
CLIENT_CLOSED = 499
#: Seconds a stream has, once the server is told to stop, to send its last events (uvicorn's
#: graceful shutdown, set in tui.serve_cli, waits longer).
SHUTDOWN_GRACE_S = 1.5
#: Paths that get no request event: the Serve pane polls them.
QUIET_PATHS = frozenset({"/health", "/metrics"})

T = TypeVar("T")


def create_app(
    loaded: LoadedModel,
    engine: EngineApi,
    *,
    api_key: str | None = None,
    max_body: int = MAX_BODY_BYTES,
    on_request: Callable[[ServeRequestEvent], None] | None = None,
) -> FastAPI:
    """Return the app serving ``loaded`` through ``engine`` (started and stopped by the caller).

    ``api_key``: when set, ``/v1`` requests must send ``Authorization: Bearer KEY``.
    ``on_request`` gets one event per answered ``/v1`` request (the request log).
    """
    metrics = ServeMetrics(
        lambda: engine.stats().waiting, lambda: engine.stats().running, lambda: engine.stats().tokens_per_s
    )
    serving = Serving(loaded, engine, on_first_token=metrics.time_to_first_token, on_tokens=metrics.tokens)
    # The tokenizer and the grammar compiler are shared; one request is prepared at a time.
    preparing = threading.Lock()
    created = protocol.now()

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ServeError(
                "missing API key: send the header 'Authorization: Bearer KEY'",
                status=401,
                kind="authentication_error",
                code="invalid_api_key",
            )
        if not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise ServeError("invalid API key", status=401, kind="authentication_error", code="invalid_api_key")

    # No redirect for a trailing slash: a 307 is no OpenAI error, and its Location echoes the Host header.
    app = FastAPI(title="routeshell", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    app.add_middleware(_RequestLog, metrics=metrics, on_request=on_request)
    _add_error_handlers(app)

    @app.api_route("/v1/models", dependencies=[Depends(authorize)], methods=["GET", "HEAD"])
    async def list_models() -> dict[str, Any]:
        return protocol.models_list(loaded.model_ids(), created, loaded.name)

    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)])
    async def chat_completions(request: Request) -> Response:
        parsed = protocol.parse_request(ChatRequest, await read_json(request, max_body))
        request.state.tally = Tally(model=parsed.model)
        job = await run_in_threadpool(_locked, preparing, serving.prepare_chat, parsed)
        return await answer(request, job, parsed.stream)

    @app.post("/v1/completions", dependencies=[Depends(authorize)])
    async def completions(request: Request) -> Response:
        parsed = protocol.parse_request(CompletionRequest, await read_json(request, max_body))
        request.state.tally = Tally(model=parsed.model)
        job = await run_in_threadpool(_locked, preparing, serving.prepare_completion, parsed)
        return await answer(request, job, parsed.stream)

    async def answer(request: Request, job: Job, stream: bool) -> Response:
        request.state.tally = job.tally
        streams = serving.submit(job)
        if not stream:
            body = await _unless_gone(request, serving.complete(job, streams), streams)
            if body is None:  # nobody is left to answer; 499 is how the request log says so
                return Response(status_code=CLIENT_CLOSED)
            return JSONResponse(body)
        # On SIGTERM sse-starlette sets ``stopping`` and, after the grace period, cancels the
        # stream: within it the stream ends with an error event and [DONE], not a cut-off body.
        stopping = anyio.Event()
        return EventSourceResponse(
            _sse(serving, job, streams, stopping),
            sep="\n",
            ping=15,
            shutdown_event=stopping,
            shutdown_grace_period=SHUTDOWN_GRACE_S,
        )

    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health() -> JSONResponse:
        stats = engine.stats()
        # A dead engine thread cannot answer anything: say so, with a status a probe notices.
        alive = engine.alive
        body = {
            "status": "ok" if alive else "engine stopped",
            "models": loaded.model_ids(),
            "dtype": loaded.dtype,
            "device": loaded.device,
            "context_length": loaded.context_length,
            "waiting": stats.waiting,
            "running": stats.running,
            "requests": metrics.total_requests,
            "tokens_per_s": round(stats.tokens_per_s, 2),
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
        }
        return JSONResponse(body, status_code=200 if alive else 503)

    @app.api_route("/metrics", methods=["GET", "HEAD"])
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app


def _locked(lock: threading.Lock, function: Callable[[T], Job], argument: T) -> Job:
    with lock:
        return function(argument)


async def read_json(request: Request, limit: int) -> Any:
    """Read the body (at most ``limit`` bytes, else 413; within :data:`BODY_TIMEOUT_S`, else 408;
    not compressed, else 415) and decode it as JSON (else 400)."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ServeError(
            f"Content-Encoding {encoding[:40]!r} is not supported: send the body uncompressed",
            status=415,
            code="unsupported_content_encoding",
        )
    declared = request.headers.get("content-length", "")
    too_large = ServeError(
        f"the request body is larger than {limit} bytes", status=413, code="request_too_large", param=None
    )
    if declared.isdigit() and int(declared) > DRAIN_LIMIT_BYTES:
        raise too_large
    body = bytearray()
    size = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                size += len(chunk)
                if size > DRAIN_LIMIT_BYTES:
                    raise too_large
                if size <= limit:
                    body += chunk
    except TimeoutError:
        raise ServeError(
            f"the request body did not arrive within {BODY_TIMEOUT_S:g} seconds", status=408, code="request_timeout"
        ) from None
    except ClientDisconnect:
        # Nobody is left to answer; the request log says so with 499, and no failure is logged.
        raise ServeError("the client left before its request was read", status=CLIENT_CLOSED) from None
    if size > limit:
        raise too_large
    if not body.strip():
        raise ServeError("the request body is empty: send a JSON object")
    too_deep = ServeError(f"the request body nests more than {MAX_JSON_DEPTH} levels of objects and arrays")
    try:
        decoded = json.loads(bytes(body), parse_int=_bounded_int)
    except RecursionError:
        raise too_deep from None
    except ValueError as err:
        raise ServeError(f"the request body is not valid JSON ({_first_line(err)})") from None
    if json_depth(decoded, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise too_deep
    return decoded


def _bounded_int(text: str) -> int:
    # Python refuses to read an integer of more than 4300 digits, in words about its own settings.
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ServeError(f"the request body holds a number of more than {MAX_INT_DIGITS} digits")
    return int(text)


def json_depth(value: Any, limit: int) -> int:
    """How deep ``value`` nests objects and arrays (a scalar is 0), counted without recursion and
    no further than ``limit + 1``."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            pending.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


async def _unless_gone(request: Request, work: Awaitable[T], streams: list[Stream]) -> T | None:
    """Await ``work``; a client that disconnects first cancels it and its streams (None)."""
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            for stream in streams:
                stream.cancel()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        return None
    return task.result()


async def _sse(
    serving: Serving, job: Job, streams: list[Stream], stopping: anyio.Event | None = None
) -> AsyncIterator[bytes]:
    """The server-sent events of a stream. An error after the first chunk can no longer change the
    status: it is sent as an ``error`` object, which the openai client raises as APIError.

    When ``stopping`` is set (the server is shutting down) the streams are cancelled and what
    they still send is replaced by a 503 error event: a cut-off answer must not read as finished."""

    async def stop_when_told(event: anyio.Event) -> None:
        await event.wait()
        for stream in streams:
            stream.cancel()

    watcher = asyncio.ensure_future(stop_when_told(stopping)) if stopping is not None else None
    try:
        async with contextlib.aclosing(serving.stream(job, streams)) as chunks:
            async for chunk in chunks:
                if stopping is not None and stopping.is_set():
                    raise ServeError("the server is stopping; try again", status=503, kind="server_error")
                yield _event(json.dumps(chunk, ensure_ascii=False))
    except ServeError as err:
        yield _event(json.dumps(err.body(), ensure_ascii=False))
    except Exception:
        log.exception("a stream failed")
        yield _event(json.dumps(_internal().body()))
    finally:
        if watcher is not None:
            watcher.cancel()
    yield _event("[DONE]")


def _event(data: str) -> bytes:
    """One server-sent event of one ``data`` line, encoded as sse-starlette would with ``sep="\\n"``
    (JSON from ``json.dumps`` holds no line break), without building an event object per token."""
    return b"data: " + data.encode() + b"\n\n"


def _internal() -> ServeError:
    return ServeError("the server failed on this request; see its log", status=500, kind="server_error")


def _error_response(err: ServeError) -> JSONResponse:
    headers = {}
    if err.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(err.retry_after)))
    if err.status == 408:  # the rest of the body may still come: the connection cannot carry another request
        headers["Connection"] = "close"
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    async def serve_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServeError)
        return _error_response(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kinds = {404: "not_found_error", 405: "invalid_request_error"}
        message = {404: f"no such endpoint: {request.url.path}", 405: f"{request.method} is not allowed here"}
        err = ServeError(
            message.get(exc.status_code, str(exc.detail)),
            status=exc.status_code,
            kind=kinds.get(exc.status_code, "invalid_request_error"),
        )
        return _error_response(err)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("request %s %s failed", request.method, request.url.path, exc_info=exc)
        return _error_response(_internal())

    app.add_exception_handler(ServeError, serve_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


class _RequestLog:
    """Counts every request in the metrics and reports each ``/v1`` one when it ends (a stream
    ends when its last event is sent, or when its client leaves)."""

    def __init__(
        self, app: ASGIApp, metrics: ServeMetrics, on_request: Callable[[ServeRequestEvent], None] | None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.on_request = on_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        path = str(scope.get("path", ""))
        tally = scope.get("state", {}).get("tally") or Tally()
        self.metrics.request(path, status, tally.prompt_tokens, tally.completion_tokens)
        if self.on_request is None or path in QUIET_PATHS:
            return
        event: ServeRequestEvent = {
            "type": "serve_request",
            "method": str(scope.get("method", "")),
            "path": path,
            "status": status,
            "model": tally.model,
            "prompt_tokens": tally.prompt_tokens,
            "completion_tokens": tally.completion_tokens,
            "elapsed_s": round(elapsed, 4),
        }
        with contextlib.suppress(Exception):  # a broken log must not break the answer
            self.on_request(event)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__
