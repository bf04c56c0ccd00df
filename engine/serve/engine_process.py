"""The engine in a process of its own: the HTTP server's event loop and the model share no GIL.

In one process the engine thread and the event loop took the GIL from each other many times per
decode step (each step's Python between the kernels, each token's SSE event): measured on two
cores, eight streaming clients lost a fifth of their tokens/s to that convoy. So ``routeshell
serve`` runs the :class:`~engine.serve.engine.Engine` in a child process and its HTTP layer talks
to it through :class:`EngineProcess`, which the app uses as it would the engine itself.

The two speak over a socket pair, one pickled message at a time (``multiprocessing.connection``
framing): the parent sends ``submit``, ``cancel`` and ``stop``; the child answers ``ready`` (or
``failed`` with an exit code and one line) once the model is loaded, then one ``deltas`` message
per engine step with every stream's new deltas and the engine's counters. A request's grammar
travels as its schema and is compiled again in the child (a compiled llguidance matcher does not
pickle; both sides keep recent grammars cached).

Lifetimes: the child ignores SIGINT and SIGTERM, which a terminal or the Serve pane send to the
whole process group: the parent stops it (``stop``) once the HTTP server has finished its
requests. It ends by itself when its end of the socket reads end of file, which is how the death
of the parent, however it died, reaches it. When the child dies, every stream still running ends
with an error, :attr:`EngineProcess.alive` turns false (``/health`` says so) and ``on_exit`` is
told why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from engine.child_process import child_env
from engine.errors import ExitCode, RouteshellError
from engine.serve.engine import EngineStats, Stream, TokenRate, _one_call_per_loop, check_request
from engine.serve.loaded import LoadedModel, ModelLoadError
from engine.serve.types import Delta, GenerationRequest, Overloaded, ServeError

if TYPE_CHECKING:
    from engine.serve.engine import Engine

log = logging.getLogger(__name__)

#: Seconds the child has to end its streams and exit after ``stop`` before it is killed.
STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class EngineSpec:
    """What the engine process loads and how it decodes (see ``routeshell serve --help``)."""

    model: str
    dtype: str
    adapters: tuple[tuple[str, str], ...] = ()
    name: str | None = None
    threads: int = 1
    prefill_threads: int | None = None
    max_batch: int = 8
    max_queue: int = 32
    device: str = "cpu"


class EngineProcess:
    """An :class:`~engine.serve.engine.Engine` in a child process, with the engine's interface.

    :meth:`launch` starts the child, which loads the weights, and :meth:`start` waits until it is
    ready. ``loaded``, given to :meth:`start`, is the model loaded without weights
    (``load_model(..., weights=False)``): requests are checked against its limits here, before they
    travel. ``on_exit`` is called (on a thread of its own) with one line when the child ends
    unexpectedly.
    """

    loaded: LoadedModel

    def __init__(self, spec: EngineSpec, *, on_exit: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self.max_batch = spec.max_batch
        self.max_queue = spec.max_queue
        self.on_exit = on_exit
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        self._next_key = 0
        self._stats = EngineStats(0, 0, spec.max_batch, spec.max_queue, 0, 0, 0, 0, 0.0)
        self._rate = TokenRate()
        self._ready = False
        self._stopping = False
        self._ended: str | None = None
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The engine process's id, once launched."""
        return None if self._process is None else self._process.pid

    # -- starting and stopping -------------------------------------------------------------------

    def launch(self) -> None:
        """Start the child process, which begins loading the model; :meth:`start` waits for it."""
        if self._process is not None:
            return
        ours, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-P",  # never the current directory first on sys.path
                    "-W",
                    "ignore",
                    "-c",
                    "import sys; from engine.serve.engine_process import main; sys.exit(main(sys.argv[1:]))",
                    str(theirs.fileno()),
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=_stderr(),  # the server's stdout carries its events: nothing else may write there
                env=child_env(),
            )
        except OSError as err:
            ours.close()
            raise RouteshellError(f"cannot start the engine process: {err.strerror or err}") from None
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._send(("start", dataclasses.asdict(self.spec)))

    def start(self, loaded: LoadedModel) -> None:
        """Launch the child if needed and wait until its model is loaded.

        Raises ModelLoadError (exit code 2) when the model cannot be loaded and RouteshellError
        when the child fails otherwise; on any failure, or an exception such as KeyboardInterrupt
        while waiting, the child is killed."""
        self.loaded = loaded
        if self._ready:
            return
        self.launch()
        assert self._conn is not None
        try:
            try:
                message = _loads(self._conn.recv_bytes())
            except (EOFError, OSError):
                raise RouteshellError(f"the engine process {self._exit_status()} while loading the model") from None
            if message[0] == "failed":
                _, code, text = message
                raise (ModelLoadError(text) if code == ExitCode.USAGE else RouteshellError(text))
            if message[0] != "ready":
                raise RouteshellError(f"the engine process answered {message[0]!r} instead of 'ready'")
            # Where the weights are and in what format: the engine process found out (``auto``).
            loaded.dtype, loaded.device = message[1]["dtype"], message[1]["device"]
        except BaseException:
            self.kill()
            raise
        self._ready = True
        self._reader = threading.Thread(target=self._read, name="routeshell-engine-reader", daemon=True)
        self._reader.start()

    def stop(self, timeout: float = STOP_GRACE_S) -> None:
        """Stop the engine: running and waiting streams end as ``cancelled``; the child exits.

        A child that does not exit within ``timeout`` seconds is killed."""
        with self._lock:
            self._stopping = True
        if self._process is None:
            return
        with contextlib.suppress(OSError):  # it has gone already
            self._send(("stop",))
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        if self._reader is not None:
            self._reader.join(timeout)
        if self._conn is not None:
            self._conn.close()
        self._end_all("the server is stopping", "cancelled")

    def kill(self) -> None:
        """Kill the child at once (when it is no longer wanted before it is ready)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._conn is not None:
            self._conn.close()

    @property
    def alive(self) -> bool:
        return self._ready and self._ended is None and not self._stopping and self._process is not None

    # -- requests ----------------------------------------------------------------------------------

    def check(self, request: GenerationRequest) -> None:
        """Raise ServeError 400 when ``request`` cannot run on this model."""
        check_request(self.loaded, request)

    def submit(self, request: GenerationRequest) -> Stream:
        """Send ``request`` to the engine and return its stream (thread-safe); raises as Engine.submit."""
        self.check(request)
        schema = getattr(request.grammar, "schema", None) if request.grammar is not None else None
        with self._lock:
            if not self.alive:
                raise ServeError(
                    self._ended or "the server is stopping", status=503, kind="server_error", retry_after=1.0
                )
            if len(self._streams) >= self.max_batch + self.max_queue:
                waiting = len(self._streams) - min(self._stats.running, len(self._streams))
                raise Overloaded(
                    f"the server is busy: {waiting} requests wait for {self.max_batch} slots; try again shortly"
                )
            key = self._next_key
            self._next_key += 1
            stream = Stream(request, functools.partial(self._cancel, key))
            self._streams[key] = stream
        try:
            self._send(("submit", key, dataclasses.replace(request, grammar=None), schema))
        except OSError:
            with self._lock:
                self._streams.pop(key, None)
            raise ServeError("the engine process has ended", status=503, kind="server_error") from None
        return stream

    def _cancel(self, key: int) -> None:
        with self._lock:
            held = key in self._streams
        if held:
            with contextlib.suppress(OSError):  # the engine has gone: the stream ends with it
                self._send(("cancel", key))

    def stats(self) -> EngineStats:
        """The engine's counters as of its last step; waiting counts what this side has sent since."""
        with self._lock:
            held = len(self._streams)
            running = min(self._stats.running, held)
            return dataclasses.replace(
                self._stats, waiting=held - running, running=running, tokens_per_s=self._rate.per_second()
            )

    # -- the socket --------------------------------------------------------------------------------

    def _send(self, message: tuple[Any, ...]) -> None:
        if self._conn is None:
            raise OSError("the engine process is not running")
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self._send_lock:
            self._conn.send_bytes(data)

    def _read(self) -> None:
        assert self._conn is not None
        while True:
            try:
                message = _loads(self._conn.recv_bytes())
            except (EOFError, OSError):
                break
            if message[0] == "deltas":
                self._deliver(message[1], message[2])
        if self._stopping:
            return
        why = f"the engine process {self._exit_status()}"
        with self._lock:
            self._ended = why
        log.error("%s", why)
        self._end_all(why, "error")
        if self.on_exit is not None:
            self.on_exit(why)

    def _deliver(self, items: Sequence[tuple[int, list[Delta]]], stats: EngineStats) -> None:
        with self._lock:
            produced = stats.completion_tokens - self._stats.completion_tokens
            self._stats = stats
            if produced > 0:
                self._rate.add(produced)
            streams = [(self._streams.get(key), deltas) for key, deltas in items]
            for key, deltas in items:
                if deltas and deltas[-1].finish_reason is not None:
                    self._streams.pop(key, None)
        with _one_call_per_loop():
            for stream, deltas in streams:
                if stream is None:
                    continue
                for delta in deltas:
                    stream.put(delta)

    def _end_all(self, why: str, reason: str) -> None:
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
        with _one_call_per_loop():
            for stream in streams:
                if not stream.finished:
                    stream.put(Delta("", finish_reason=reason, error=why))  # type: ignore[arg-type]

    def _exit_status(self) -> str:
        if self._process is None:
            return "is not running"
        try:
            code = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"was killed by {name}"
        return f"ended with exit code {code}"


def _stderr() -> int:
    """This process's standard error as a file descriptor, or DEVNULL where it has none."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an object without a descriptor
        return subprocess.DEVNULL


def _loads(data: bytes) -> tuple[Any, ...]:
    message = pickle.loads(data)  # our own child, over a socket pair
    if not isinstance(message, tuple) or not message:
        raise OSError("a malformed message from the other process")
    return message


# -- the child ---------------------------------------------------------------------------------------


class _Worker:
    """The child's side: the engine, the streams it holds for the parent, and the socket."""

    def __init__(self, conn: Connection, loaded: LoadedModel, spec: EngineSpec) -> None:
        from engine.serve.engine import Engine

        self.conn = conn
        self.loaded = loaded
        self.streams: dict[int, Stream] = {}
        # Held while taking deltas and sending them, so that each stream's deltas leave in order
        # whichever thread sends them.
        self.lock = threading.Lock()
        self.engine: Engine = Engine(
            loaded,
            max_batch=spec.max_batch,
            # The parent holds the sequences to max_batch + max_queue, but it counts them when they
            # are sent: some of those it counts as running may still wait here.
            max_queue=spec.max_queue + spec.max_batch,
            prefill_threads=spec.prefill_threads,
            on_deltas=self.forward,
        )

    def forward(self) -> None:
        """Send every stream's new deltas and the engine's counters in one message."""
        with self.lock:
            items: list[tuple[int, list[Delta]]] = []
            for key, stream in list(self.streams.items()):
                deltas = stream.take()
                if deltas:
                    items.append((key, deltas))
                    if deltas[-1].finish_reason is not None:
                        del self.streams[key]
            if items:
                self._send(("deltas", items, self.engine.stats()))

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            self.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            os._exit(0)  # the parent has gone: nobody is left to serve

    def run(self) -> None:
        self.engine.start()
        self._send(("ready", {"dtype": self.loaded.dtype, "device": self.loaded.device}))
        while True:
            try:
                message = _loads(self.conn.recv_bytes())
            except (EOFError, OSError):
                break  # the parent has gone
            if message[0] == "submit":
                self.submit(*message[1:])
            elif message[0] == "cancel":
                with self.lock:
                    stream = self.streams.get(message[1])
                if stream is not None:
                    stream.cancel()
            elif message[0] == "stop":
                break
        self.engine.stop()
        self.forward()

    def submit(self, key: int, request: GenerationRequest, schema: Mapping[str, Any] | None) -> None:
        try:
            if schema is not None:
                from engine.serve.grammar import compile_schema

                grammar = compile_schema(schema, self.loaded.tokenizer, eos_ids=sorted(self.loaded.eos_ids))
                request = dataclasses.replace(request, grammar=grammar)
            stream = self.engine.submit(request)
        except Exception as err:  # refused here though the parent took it: that sequence fails alone
            stream = Stream(request, lambda: None)
            stream.put(Delta("", finish_reason="error", error=_first_line(err)))
        with self.lock:
            self.streams[key] = stream
        self.forward()  # what the engine made of it before it was listed here


def _first_line(err: BaseException) -> str:
    from engine.names import display_line

    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {display_line(lines[0][:300])}" if lines else type(err).__name__


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from engine.names import display_line

        lines = record.getMessage().strip().splitlines()
        message = f"routeshell: serve: engine: {display_line(lines[0] if lines else '')}"
        if record.exc_info and record.exc_info[1] is not None:
            message += f": {_first_line(record.exc_info[1])}"
        return message


def main(argv: Sequence[str]) -> int:
    """The child: ``python -c '...main(argv)' FD``, FD its end of the socket pair."""
    # The parent stops this process when its requests are done: a terminal's Ctrl-C or the Serve
    # pane's SIGTERM to the process group is for the parent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    logging.getLogger("engine").handlers = [handler]
    logging.getLogger("engine").propagate = False
    conn = Connection(int(argv[0]))
    try:
        message = _loads(conn.recv_bytes())
    except (EOFError, OSError):
        return int(ExitCode.FAILED)
    spec = EngineSpec(**{**message[1], "adapters": tuple(tuple(pair) for pair in message[1]["adapters"])})
    try:
        loaded = load_engine_model(spec)
    except ModelLoadError as err:
        _try_send(conn, ("failed", int(ExitCode.USAGE), str(err)))
        return int(ExitCode.USAGE)
    except Exception as err:  # a failure inside the libraries: one line for the parent to report
        _try_send(conn, ("failed", int(ExitCode.FAILED), f"the model cannot be loaded: {_first_line(err)}"))
        return int(ExitCode.FAILED)
    _Worker(conn, loaded, spec).run()
    return int(ExitCode.OK)


def load_engine_model(spec: EngineSpec) -> LoadedModel:
    """Load ``spec``'s model with its weights, decoding on ``spec.threads`` torch threads."""
    from pathlib import Path

    from engine.bitsandbytes_gate import quantized_by_bitsandbytes, settle_bitsandbytes
    from engine.quiet import quiet_libraries
    from engine.serve.loaded import load_model

    settle_bitsandbytes(quantized_by_bitsandbytes(Path(spec.model)))
    quiet_libraries(import_torch=True, passive_threads=True)
    import torch

    torch.set_num_threads(spec.threads)
    adapters = {name: Path(path) for name, path in spec.adapters}
    return load_model(
        Path(spec.model),
        dtype=spec.dtype,  # type: ignore[arg-type]
        adapters=adapters,
        name=spec.name,
        device=spec.device,
    )


def _try_send(conn: Connection, message: tuple[Any, ...]) -> None:
    with contextlib.suppress(OSError):
        conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
