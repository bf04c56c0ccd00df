"""The engine: one thread owns the model and decodes every admitted sequence in one batch.

Requests wait in a bounded queue. Between two decode steps the engine thread admits waiting
requests up to ``max_batch``: their prompts are prefilled together, grouped by length, and
their key/value cache joins the batch's (left-padded, :mod:`engine.serve.batch`). Every step
then feeds one token per sequence through the model, picks the next token of each
(:mod:`engine.serve.sampling`), and hands each sequence's new text to its :class:`Stream`. A
finished or cancelled sequence leaves the batch at once. The engine knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engine.serve.loaded import BASE_ADAPTER, LoadedModel
from engine.serve.types import Delta, GenerationRequest, Overloaded, ServeError, TokenLogprob

if TYPE_CHECKING:
    import torch

    from engine.serve.batch import BatchCache

log = logging.getLogger(__name__)

#: Seconds over which /health and /metrics report tokens per second.
RATE_WINDOW_S = 5.0
#: An idle engine that receives a request waits for more while they come at most this far apart...
GATHER_QUIET_S = 0.004
#: ...and this long in all, before it prefills them together (:meth:`Engine._gather`).
GATHER_MAX_S = 0.025


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of the engine's load and totals."""

    waiting: int
    running: int
    max_batch: int
    max_queue: int
    admitted: int
    finished: int
    prompt_tokens: int
    completion_tokens: int
    tokens_per_s: float


@dataclass(frozen=True)
class Completion:
    """A whole generated sequence (see :func:`collect`)."""

    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[TokenLogprob, ...]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None


class Stream:
    """The deltas of one sequence, from the engine thread to one reader (a thread or an event loop).

    Iterate it (blocking) or ``async for`` over :meth:`aiter`; the last delta has
    ``finish_reason`` set. :meth:`cancel` takes the sequence out of the batch at the next step.
    """

    def __init__(self, request: GenerationRequest, wake: Any) -> None:
        self.request = request
        self.submitted_at = time.monotonic()
        self.first_token_at: float | None = None
        self._wake = wake
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._items: deque[Delta] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_queue: asyncio.Queue[Delta] | None = None
        self._cancelled = threading.Event()
        self.finished = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Stop generating this sequence; its batch slot is freed before the next decode step."""
        if not self._cancelled.is_set():
            self._cancelled.set()
            self._wake()

    def put(self, delta: Delta) -> None:
        """Hand over a delta (called by the engine thread)."""
        if delta.finish_reason is not None:
            self.finished = True
        with self._lock:
            if self._loop is None or self._async_queue is None:
                self._items.append(delta)
                self._ready.notify_all()
                return
            loop, queue = self._loop, self._async_queue
        outbox: _Outbox | None = getattr(_delivery, "outbox", None)
        if outbox is not None:
            outbox.add(loop, self, queue, delta)
            return
        try:
            loop.call_soon_threadsafe(queue.put_nowait, delta)
        except RuntimeError:  # the reader's event loop is closed: nobody is listening any more
            self._cancelled.set()

    def take(self) -> list[Delta]:
        """The deltas put so far and not yet read, without waiting (for a reader that polls)."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items

    def __iter__(self) -> Iterator[Delta]:
        while True:
            with self._lock:
                while not self._items:
                    self._ready.wait()
                delta = self._items.popleft()
            yield delta
            if delta.finish_reason is not None:
                return

    async def aiter(self) -> AsyncIterator[Delta]:
        """The deltas, read from the running event loop."""
        queue: asyncio.Queue[Delta] = asyncio.Queue()
        with self._lock:
            self._loop, self._async_queue = asyncio.get_running_loop(), queue
            while self._items:
                queue.put_nowait(self._items.popleft())
        while True:
            delta = await queue.get()
            yield delta
            if delta.finish_reason is not None:
                return


#: The engine thread's :class:`_Outbox` while one is open (see :func:`_one_call_per_loop`).
_delivery = threading.local()


class _Outbox:
    """Deltas bound for event loops, held until :meth:`flush` hands each loop all of its own in one
    call.

    A call from another thread wakes the loop through a pipe, and the loop takes the GIL at once:
    with a call per stream, each step of eight streams handed the GIL back and forth eight times
    between the engine thread and the event loop, and the engine thread waited for it each time."""

    def __init__(self) -> None:
        self._by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Stream, asyncio.Queue[Delta], Delta]]] = {}

    def add(self, loop: asyncio.AbstractEventLoop, stream: Stream, queue: asyncio.Queue[Delta], delta: Delta) -> None:
        self._by_loop.setdefault(loop, []).append((stream, queue, delta))

    def flush(self) -> None:
        by_loop, self._by_loop = self._by_loop, {}
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # the readers' event loop is closed: nobody is listening any more
                for stream, _, _ in items:
                    stream._cancelled.set()


def _deliver(items: list[tuple[Stream, asyncio.Queue[Delta], Delta]]) -> None:
    for _, queue, delta in items:
        queue.put_nowait(delta)


@contextmanager
def _one_call_per_loop() -> Iterator[_Outbox]:
    """Within the block, deltas put by this thread for event loops wait in an outbox, flushed at its
    end (and whenever :meth:`_Outbox.flush` is called)."""
    outbox = _Outbox()
    _delivery.outbox = outbox
    try:
        yield outbox
    finally:
        _delivery.outbox = None
        outbox.flush()


def collect(stream: Stream) -> Completion:
    """Read ``stream`` to its end (blocking) and return the whole sequence."""
    text: list[str] = []
    tokens: list[int] = []
    logprobs: list[TokenLogprob] = []
    for delta in stream:
        text.append(delta.text)
        tokens.extend(delta.token_ids)
        logprobs.extend(delta.logprobs)
        if delta.finish_reason is not None:
            return Completion(
                text="".join(text),
                token_ids=tuple(tokens),
                logprobs=tuple(logprobs),
                finish_reason=delta.finish_reason,
                prompt_tokens=delta.prompt_tokens,
                completion_tokens=delta.completion_tokens,
                error=delta.error,
            )
    raise AssertionError("a stream ends with a finish reason")  # pragma: no cover


@contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    """Run the block on ``count`` torch threads (unchanged when None), then restore the count."""
    import torch

    before = torch.get_num_threads()
    if count is None or count == before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class EngineApi(Protocol):
    """What the HTTP layer needs of an engine: :class:`Engine` in this process, or
    :class:`~engine.serve.engine_process.EngineProcess` in a process of its own."""

    max_batch: int
    max_queue: int

    @property
    def alive(self) -> bool: ...

    def check(self, request: GenerationRequest) -> None: ...

    def submit(self, request: GenerationRequest) -> Stream: ...

    def stats(self) -> EngineStats: ...


class TokenRate:
    """Tokens per second over the last :data:`RATE_WINDOW_S` seconds (not thread-safe: lock it)."""

    def __init__(self) -> None:
        self._counts: deque[tuple[float, int]] = deque()

    def add(self, tokens: int) -> None:
        self._counts.append((time.monotonic(), tokens))

    def per_second(self) -> float:
        now = time.monotonic()
        while self._counts and self._counts[0][0] < now - RATE_WINDOW_S:
            self._counts.popleft()
        tokens = sum(count for _, count in self._counts)
        if not tokens:
            return 0.0
        return tokens / min(RATE_WINDOW_S, max(now - self._counts[0][0], 1e-3))


class Engine:
    """Batched decoding of every submitted request on one model, in one thread.

    ``max_batch`` sequences decode together; up to ``max_queue`` more wait (beyond that,
    :meth:`submit` raises :class:`Overloaded`).

    Decoding runs on the engine thread's torch threads (``torch.set_num_threads`` before
    :meth:`start`). Prefill is compute-bound where a decode step is bound by memory bandwidth, so
    ``prefill_threads``, when given, is the torch thread count for prefill steps alone: measured
    on two cores, eight 64-token prompts prefilled in 80 ms on two threads against 140 on one,
    while a decode step gained nothing from a second thread that the HTTP layer needs.

    ``on_deltas``, when given, is called on the engine thread whenever a step has handed its
    deltas to the streams: once the prompts joining the batch have their first tokens, after each
    decode step, and after :meth:`stop` has ended the streams (the engine process,
    :mod:`engine.serve.engine_process`, sends them on from there).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        max_batch: int = 8,
        max_queue: int = 32,
        prefill_threads: int | None = None,
        on_deltas: Callable[[], None] | None = None,
        gather: tuple[float, float] = (GATHER_QUIET_S, GATHER_MAX_S),
    ) -> None:
        if max_batch < 1 or max_queue < 0:
            raise ValueError("max_batch must be at least 1 and max_queue at least 0")
        if prefill_threads is not None and prefill_threads < 1:
            raise ValueError("prefill_threads must be at least 1")
        self.loaded = loaded
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.prefill_threads = prefill_threads
        #: How far apart requests to an idle engine may come, and for how long in all, to be
        #: prefilled together (:meth:`_gather`).
        self.gather_quiet_s, self.gather_max_s = gather
        self._on_deltas = on_deltas
        self._cond = threading.Condition()
        self._waiting: deque[Stream] = deque()
        self._running = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._admitted = 0
        self._finished = 0
        self._prompt_tokens = 0
        self._completion_tokens = 0
        self._rate = TokenRate()

    # -- the caller's side -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the engine thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="routeshell-engine", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the engine thread; every waiting or running sequence ends as ``cancelled``."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def check(self, request: GenerationRequest) -> None:
        """Raise ServeError 400 when ``request`` cannot run on this model (see :func:`check_request`)."""
        check_request(self.loaded, request)

    def submit(self, request: GenerationRequest) -> Stream:
        """Queue ``request`` and return its stream. Thread-safe.

        Raises ServeError 400 (see :meth:`check`), Overloaded when the queue is full, and
        ServeError 503 once the engine is stopping."""
        self.check(request)
        stream = Stream(request, self._wake)
        with self._cond:
            if self._stopping or not self.alive:
                raise ServeError("the server is stopping", status=503, kind="server_error", retry_after=1.0)
            if len(self._waiting) >= self.max_queue and self._running + len(self._waiting) >= self.max_batch:
                raise Overloaded(
                    f"the server is busy: {len(self._waiting)} requests wait for {self.max_batch} slots; "
                    "try again shortly"
                )
            self._waiting.append(stream)
            self._cond.notify_all()
        return stream

    def stats(self) -> EngineStats:
        """Return the engine's current load and totals."""
        with self._cond:
            return EngineStats(
                waiting=len(self._waiting),
                running=self._running,
                max_batch=self.max_batch,
                max_queue=self.max_queue,
                admitted=self._admitted,
                finished=self._finished,
                prompt_tokens=self._prompt_tokens,
                completion_tokens=self._completion_tokens,
                tokens_per_s=self._rate.per_second(),
            )

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- the engine thread ----------------------------------------------------------------------

    def _run(self) -> None:
        import torch

        from engine.serve.batch import BatchCache

        batch = BatchCache(self.loaded)
        with torch.inference_mode():
            while True:
                with self._cond:
                    while not self._waiting and not batch.rows and not self._stopping:
                        self._cond.wait()
                    if not batch.rows:
                        self._gather()
                    if self._stopping:
                        break
                    # A waiting request whose client left gives its place back now (_step ends it),
                    # not once a batch slot frees up.
                    gone = [stream for stream in self._waiting if stream.cancelled]
                    for stream in gone:
                        self._waiting.remove(stream)
                    admitted: list[Stream] = []
                    while self._waiting and len(batch.rows) + len(admitted) < self.max_batch:
                        admitted.append(self._waiting.popleft())
                with _one_call_per_loop() as outbox:
                    try:
                        self._step(batch, gone + admitted, outbox)
                    except Exception as err:  # the engine must outlive any one step: end what it held
                        log.exception("engine step failed")
                        for stream in admitted + [row.stream for row in batch.rows]:
                            if not stream.finished:
                                stream.put(Delta("", finish_reason="error", error=_why(err)))
                        batch.clear()
                        batch.take_finished()
                self._handed_over()
            self._shutdown(batch)
            self._handed_over()

    def _gather(self) -> None:
        """With the lock held and nothing decoding: wait while requests keep arriving, each within
        ``gather_quiet_s`` (:data:`GATHER_QUIET_S`) of the one before, for at most ``gather_max_s``
        (:data:`GATHER_MAX_S`), so that requests sent together are prefilled together.

        Measured on two cores: eight clients' requests reach the engine over 12-18 ms. Admitted as
        they came, the first was prefilled alone (25-35 ms) and the other seven after it (about
        120 ms), where all eight together take about 90."""
        deadline = time.monotonic() + self.gather_max_s
        seen = len(self._waiting)
        while seen < self.max_batch and not self._stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(min(self.gather_quiet_s, left))
            if len(self._waiting) <= seen:
                return  # quiet: nothing more came
            seen = len(self._waiting)

    def _step(self, batch: BatchCache, admitted: list[Stream], outbox: _Outbox | None = None) -> None:
        from engine.serve.batch import prefill_groups

        joining: list[Stream] = []
        for stream in admitted:
            if stream.cancelled:
                self._end(stream, Delta("", finish_reason="cancelled", prompt_tokens=len(stream.request.prompt_ids)))
            else:
                joining.append(stream)
        with self._cond:
            self._admitted += len(joining)
            self._prompt_tokens += sum(len(stream.request.prompt_ids) for stream in joining)
            self._running = len(batch.rows) + len(joining)
        if joining:
            with _torch_threads(self.prefill_threads):
                for group in prefill_groups([len(stream.request.prompt_ids) for stream in joining]):
                    self._prefill(batch, [joining[index] for index in group])
            if outbox is not None:  # the first tokens go out now, not after the decode step
                outbox.flush()
            self._handed_over()
        batch.drop_cancelled()
        if batch.rows:
            try:
                produced = batch.decode()
            except Exception as err:
                log.exception("decode step failed")
                for row in batch.rows:
                    row.stream.put(Delta("", finish_reason="error", error=_why(err)))
                batch.clear()
                produced = 0
            self._count(produced)
        for stream in batch.take_finished():
            self._note_finished(stream)
        with self._cond:
            self._running = len(batch.rows)

    def _prefill(self, batch: BatchCache, streams: list[Stream]) -> None:
        try:
            self._count(batch.add([(stream, _seed(stream.request)) for stream in streams]))
        except Exception as err:  # one request's failure must not take the server down
            if len(streams) == 1:
                log.exception("prefill failed")
                self._end(streams[0], Delta("", finish_reason="error", error=_why(err)))
                return
        else:
            return
        for stream in streams:  # find which one failed: each alone
            self._prefill(batch, [stream])

    def _handed_over(self) -> None:
        if self._on_deltas is not None:
            self._on_deltas()

    def _count(self, produced: int) -> None:
        if produced:
            with self._cond:
                self._completion_tokens += produced
                self._rate.add(produced)

    def _end(self, stream: Stream, delta: Delta) -> None:
        stream.put(delta)
        self._note_finished(stream)

    def _note_finished(self, stream: Stream) -> None:
        with self._cond:
            self._finished += 1

    def _shutdown(self, batch: BatchCache) -> None:
        with self._cond:
            waiting = list(self._waiting)
            self._waiting.clear()
        for stream in waiting + [row.stream for row in batch.rows]:
            stream.put(Delta("", finish_reason="cancelled", error="the server is stopping"))
        batch.clear()
        with self._cond:
            self._running = 0


def check_request(loaded: LoadedModel, request: GenerationRequest) -> None:
    """Raise ServeError 400 when ``request`` cannot run on ``loaded`` (its lengths, its adapter, its tokens)."""
    context = loaded.context_length
    prompt = len(request.prompt_ids)
    if prompt == 0:
        raise ServeError("the prompt is empty", param="messages")
    if prompt >= context:
        raise ServeError(
            f"the prompt is {prompt} tokens; this model's context is {context} tokens, so the prompt must be shorter",
            param="messages",
            code="context_length_exceeded",
        )
    if request.params.max_tokens < 1:
        raise ServeError("max_tokens must be at least 1", param="max_tokens")
    if prompt + request.params.max_tokens > context:
        raise ServeError(
            f"max_tokens is {request.params.max_tokens} but the prompt is {prompt} tokens and the "
            f"context {context}: at most {context - prompt} new tokens fit",
            param="max_tokens",
            code="context_length_exceeded",
        )
    if request.adapter is not None and request.adapter not in loaded.adapters:
        raise ServeError(f"no adapter {request.adapter!r} is loaded", status=404, param="model")
    vocab = loaded.vocab_size
    if any(not 0 <= token < vocab for token in request.prompt_ids):
        raise ServeError("the prompt holds a token id outside the vocabulary", param="prompt")


def _seed(request: GenerationRequest) -> int:
    if request.params.seed is not None:
        return request.params.seed
    return random.SystemRandom().randrange(2**63)


def _why(err: BaseException) -> str:
    """What ``err`` says, for the request it ended: its type and the first 300 characters of its first line."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300]}" if text else type(err).__name__


def adapter_name(request: GenerationRequest) -> str:
    """The PEFT adapter name of ``request``'s row in a mixed batch."""
    return request.adapter or BASE_ADAPTER


def logits_rows(logits: torch.Tensor) -> torch.Tensor:
    """The last position's logits of each row, in fp32."""
    return logits[:, -1, :].float()
