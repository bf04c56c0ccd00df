"""``routeshell serve`` and ``routeshell generate``: a trained model behind the OpenAI API, or offline.

``serve`` starts the engine in a process of its own (:mod:`engine.serve.engine_process`), which
loads the weights, and runs uvicorn (one worker) on the app of :mod:`engine.serve.app`. With
``--events`` it prints JSON lines (serve_ready, one serve_request per request, serve_stopped) for
the Serve pane; otherwise a readable log. ``generate`` runs the same engine in its own process,
without HTTP (:mod:`tui.generate_cli`). torch, transformers and FastAPI load only when a command
runs, never for ``--help``.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from engine.child_process import HUGE_PAGES_MARK
from tui.arg_types import api_key, given_path, model_name, positive_int

if TYPE_CHECKING:
    from engine.model_events import ServeRequestEvent
    from engine.serve.engine_process import EngineProcess, EngineSpec
    from engine.serve.loaded import LoadedModel

DTYPES = ("auto", "fp32", "bf16", "int8")
#: ``--device``: as :data:`engine.serve.loaded.DEVICES` (not imported: ``--help`` stays instant).
DEVICES = ("cpu", "cuda", "auto")

SERVE_DESCRIPTION = """\
Serve a model trained with 'routeshell train' behind the OpenAI API, on loopback by default.

endpoints (base URL http://HOST:PORT/v1):
  GET  /v1/models             the model and each adapter, as model ids
  POST /v1/chat/completions   chat, streamed (SSE) or not; response_format json_object/json_schema
  POST /v1/completions        plain-text completion
  GET  /health                status, model ids, weight format, device, queue (waiting), running
                              sequences, tokens/s
  GET  /metrics               Prometheus metrics

Extensions of the request body (extra_body with the openai client): "self_consistency": N samples
with a majority vote over their final answers; "calculator": true evaluates the question's
arithmetic and gives the result to the model; "logprobs_mode": "processed" gives logprobs of what
each token is picked from (after the grammar of response_format) instead of the model's own.

Binding to an address other than loopback needs an API key (--api-key or $ROUTESHELL_API_KEY).
"""

SERVE_EXIT_CODES = """\
exit codes:
  0    stopped by SIGTERM
  1    the server failed (the port is in use, the engine crashed)
  2    bad input: a missing or unusable model directory (a config.json that does not describe
       its weights, a malformed tokenizer.json), an adapter, a non-loopback address without an
       API key, --device cuda where torch sees no CUDA device
  130  stopped by Ctrl-C
"""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535 (0: any free port), got {text!r}")
    return value


def _adapter(text: str) -> tuple[str, Path]:
    from engine.names import display_name

    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {display_name(text)!r}")
    return model_name(name.strip()), Path(path)


def add_serve_commands(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``serve`` and ``generate`` with their options to the ``routeshell`` subcommands."""
    serve = commands.add_parser(
        "serve",
        help="serve a trained model behind the OpenAI API",
        description=SERVE_DESCRIPTION,
        epilog=SERVE_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = serve.add_argument
    add("--model", required=True, type=given_path, metavar="DIR", help="a model directory made by 'routeshell train'")
    add("--adapter", action="append", default=[], type=_adapter, metavar="NAME=DIR", help="a LoRA adapter (repeatable)")
    add("--name", type=model_name, metavar="ID", help="the model id clients ask for (default: the directory name)")
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=_port, default=8765, help="port to listen on (default 8765; 0: any free port)")
    add(
        "--api-key",
        type=api_key,
        metavar="KEY",
        help="require 'Authorization: Bearer KEY' (default: $ROUTESHELL_API_KEY)",
    )
    add(
        "--dtype",
        choices=DTYPES,
        default="auto",
        help="weight format (auto: int8 on a CPU, bf16 with adapters or on a GPU)",
    )
    add_device_option(serve)
    add("--max-batch", type=positive_int, default=8, metavar="N", help="sequences decoded together (8)")
    add("--max-queue", type=positive_int, default=32, metavar="N", help="sequences waiting before 503 (32)")
    add_threads_option(serve)
    add("--events", action="store_true", help="print JSON-lines events on stdout instead of a readable log")

    from tui.generate_cli import add_generate_command

    add_generate_command(commands, DTYPES)


def default_threads() -> int:
    """Decoding threads by default: every core but one, which the HTTP event loop needs.

    Measured on two cores: one decoding thread streamed one client about 1.8x faster than two,
    and eight clients as fast."""
    return max(1, usable_cores() - 1)


def default_prefill_threads() -> int:
    """Prefill threads by default: every core (a prefill is compute-bound, and short)."""
    return usable_cores()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as ``taskset`` sets it), else all."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def thread_count(text: str) -> int:
    """A thread count from 1 to the cores this process may use: thousands of threads (one per
    core asked for) would each be started, and would only slow the model down."""
    value = positive_int(text)
    if value > usable_cores():
        raise argparse.ArgumentTypeError(
            f"expected at most {usable_cores()} (the cores this process may use), got {text!r}"
        )
    return value


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="where the model runs (default cpu; auto: a CUDA GPU when torch sees one, else the CPU)",
    )


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=thread_count,
        default=None,
        metavar="N",
        help=f"CPU threads for decoding (default: all cores but one, here {default_threads()})",
    )
    parser.add_argument(
        "--prefill-threads",
        type=thread_count,
        default=None,
        metavar="N",
        help=f"CPU threads for reading prompts (default: all cores, here {default_prefill_threads()})",
    )


def prefill_threads(args: argparse.Namespace) -> int:
    """``--prefill-threads``, or its default."""
    return getattr(args, "prefill_threads", None) or default_prefill_threads()


#: glibc's malloc tunable that asks for transparent huge pages (glibc 2.35 and later).
HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb"
#: With it, blocks up to 32 MB come from the heap and freed memory stays there up to 256 MB: each
#: decode step allocates and frees the same large temporaries, and a fresh mapping for each would
#: fault in (and zero) new huge pages every step (measured: 8 streams decoded 3-4% slower).
HUGE_PAGES_TUNABLES = (
    f"{HUGE_PAGES_TUNABLE}=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"
)
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")
#: Set in the environment of the command run again, so that it is run again only once, to the whole
#: ``GLIBC_TUNABLES`` it runs with, which its own children get (``engine.child_process.child_env``).
REEXEC_MARK = HUGE_PAGES_MARK


def reexec_with_huge_pages(own_process: bool) -> None:
    """Run this command again, once, with glibc's malloc asking for transparent huge pages.

    ``own_process`` says that the command is the process's own command line: a program that calls
    ``tui.cli.main`` with its own arguments is never run again.

    A decode step streams every weight through the CPU; on 4 KB pages that is a TLB miss every
    4 KB. Measured here on the ``small`` preset in int8, huge pages decoded one stream 6-10%
    faster (see :data:`HUGE_PAGES_TUNABLES`). glibc reads its tunables only when a process
    starts, hence the ``exec`` (the same process id, before anything is read or printed).
    Nothing happens off Linux, where the kernel offers no transparent huge pages, or when
    ``GLIBC_TUNABLES`` already names the tunable (``glibc.malloc.hugetlb=0`` turns this off); a
    failed ``exec`` leaves the command running as it is."""
    current = os.environ.get("GLIBC_TUNABLES", "")
    argv = list(getattr(sys, "orig_argv", []))
    if (
        not own_process
        or not sys.platform.startswith("linux")
        or HUGE_PAGES_TUNABLE in current
        or os.environ.get(REEXEC_MARK)  # once only, whatever glibc made of the variable
        or len(argv) < 2
    ):
        return
    try:
        setting = THP_SETTING.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return
    if "[never]" in setting:
        return
    tunables = f"{current}:{HUGE_PAGES_TUNABLES}" if current else HUGE_PAGES_TUNABLES
    env = os.environ | {"GLIBC_TUNABLES": tunables, REEXEC_MARK: tunables}
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *argv[1:]], env)
    except OSError:
        return


def load(args: argparse.Namespace, adapters: Mapping[str, Path] | None = None, *, weights: bool = True) -> LoadedModel:
    """Load ``--model`` with ``--dtype`` (and the adapters) on ``--threads``; errors are one line, exit code 2.

    ``weights=False`` loads what the HTTP layer needs and leaves the weights to the engine process."""
    from engine.bitsandbytes_gate import quantized_by_bitsandbytes, settle_bitsandbytes
    from engine.quiet import quiet_libraries
    from engine.serve.loaded import load_model
    from engine.serve.model_dir import checked_shapes

    checked_shapes(args.model)  # before torch is imported: a directory that cannot be served says so at once
    settle_bitsandbytes(quantized_by_bitsandbytes(args.model))
    quiet_libraries(import_torch=weights, passive_threads=True)
    if weights:
        import torch

        torch.set_num_threads(getattr(args, "threads", None) or default_threads())
    return load_model(
        args.model,
        dtype=args.dtype,
        adapters=dict(adapters or {}),
        name=getattr(args, "name", None),
        device=getattr(args, "device", "cpu"),
        weights=weights,
    )


def is_loopback(host: str) -> bool:
    """True when ``host`` is a loopback address or ``localhost``."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """Return a listening socket on ``host:port``; a port in use is one line, exit code 1."""
    from engine.errors import RouteshellError, UsageError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise UsageError(f"cannot listen on {host!r}: {err.strerror or err}; give an IP address") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        if err.errno in (98, 48):  # EADDRINUSE on Linux and macOS
            raise RouteshellError(
                f"port {port} on {host} is in use; stop what uses it or pick another --port"
            ) from None
        raise RouteshellError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.set_inheritable(False)
    return sock


def _checked_options(args: argparse.Namespace) -> tuple[str | None, dict[str, Path]]:
    """Return the API key and the adapters; raise UsageError for a combination that cannot run."""
    from engine.errors import UsageError
    from engine.urls import checked_api_key

    api_key = args.api_key or checked_api_key(os.environ.get("ROUTESHELL_API_KEY"), "$ROUTESHELL_API_KEY")
    if not is_loopback(args.host) and api_key is None:
        raise UsageError(
            f"serving on {args.host}, beyond this machine, needs an API key: add --api-key KEY "
            "(or set ROUTESHELL_API_KEY), or use --host 127.0.0.1"
        )
    adapters: dict[str, Path] = {}
    for name, path in args.adapter:
        if name in adapters:
            raise UsageError(f"--adapter {name!r} is given twice; give each adapter one name")
        adapters[name] = path
    return api_key, adapters


def run_serve_command(args: argparse.Namespace) -> int:
    """Run ``routeshell serve`` until a signal; return the exit code."""
    from engine.errors import ExitCode, RouteshellError, UsageError

    log = _EventLog(args.events)
    try:
        api_key, adapters = _checked_options(args)
    except UsageError as err:
        log.error(str(err), int(err.exit_code))
        raise
    reexec_with_huge_pages(getattr(args, "own_process", False))

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    # Until the server runs (loading takes seconds), SIGTERM ends at once, still with its event.
    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        sock = bind(args.host, args.port)
        with sock:
            from engine.serve.engine_process import EngineProcess

            engine = EngineProcess(engine_spec(args, adapters))
            engine.launch()  # the engine process loads the weights while this one reads the tokenizer
            try:
                loaded = load(args, adapters, weights=False)
                if loaded.name in loaded.adapters:
                    raise UsageError(f"the adapter {loaded.name!r} has the model's own id; rename it or give --name")
                engine.start(loaded)
            except BaseException:
                engine.kill()
                raise
            return _serve(args, sock, loaded, engine, api_key, log)
    except _Terminated:
        log.stopped("signal")
        return ExitCode.OK
    except RouteshellError as err:
        log.error(str(err), int(err.exit_code))
        raise
    except KeyboardInterrupt:
        log.error("interrupted", int(ExitCode.INTERRUPTED))
        raise
    except Exception as err:
        # A failure inside the libraries while loading: one line, never a traceback.
        message = f"the server failed: {type(err).__name__}: {_first_line(err)}"
        log.error(message, int(ExitCode.FAILED))
        raise RouteshellError(message) from err
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Terminated(BaseException):
    """SIGTERM before the server runs."""


def engine_spec(args: argparse.Namespace, adapters: Mapping[str, Path]) -> EngineSpec:
    """What the engine process of ``routeshell serve`` loads, and on how many threads."""
    from engine.serve.engine_process import EngineSpec

    return EngineSpec(
        model=str(args.model),
        dtype=args.dtype,
        adapters=tuple((name, str(path)) for name, path in adapters.items()),
        name=getattr(args, "name", None),
        threads=getattr(args, "threads", None) or default_threads(),
        prefill_threads=prefill_threads(args),
        max_batch=args.max_batch,
        max_queue=args.max_queue,
        device=getattr(args, "device", "cpu"),
    )


def _serve(
    args: argparse.Namespace,
    sock: socket.socket,
    loaded: LoadedModel,
    engine: EngineProcess,
    api_key: str | None,
    log: Any,
) -> int:
    import uvicorn

    from engine.errors import ExitCode, RouteshellError
    from engine.serve.app import create_app
    from engine.serve.http_protocol import HeaderDeadlineProtocol

    _configure_logging()
    app = create_app(loaded, engine, api_key=api_key, on_request=log.request)
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,
        server_header=False,
        http=HeaderDeadlineProtocol,
        ws="none",  # an Upgrade: websocket request is answered as the HTTP request it also is
    )
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/v1"

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                log.ready(url, loaded, engine.pid or 0)

    server = Server(config)
    stopped_by: list[int] = []
    engine_ended: list[str] = []

    def ended(why: str) -> None:  # the engine process died: the streams it held have ended in error
        engine_ended.append(why)
        server.should_exit = True

    engine.on_exit = ended

    def note(signum: int, frame: FrameType | None) -> None:
        # uvicorn handles the signal while it runs and raises it again when it has stopped: here.
        stopped_by.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    except BaseException as err:
        log.stopped("error")
        if isinstance(err, (RouteshellError, KeyboardInterrupt, SystemExit)):
            raise
        raise RouteshellError(f"the server failed: {type(err).__name__}: {_first_line(err)}") from err
    finally:
        engine.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if engine_ended:
        log.stopped("error")
        raise RouteshellError(f"the server stopped: {engine_ended[0]}")
    log.stopped("signal")
    if signal.SIGINT in stopped_by:
        return ExitCode.INTERRUPTED
    return ExitCode.OK


def _first_line(err: BaseException) -> str:
    from engine.names import display_line

    text = str(err).strip()
    return display_line(text.splitlines()[0][:300]) if text else ""


def _configure_logging() -> None:
    """Library and server log lines go to stderr, one line each (a failed request's traceback is
    not the client's business nor the terminal's: its type and message are enough to report)."""

    class OneLine(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            from engine.names import display_line

            # uvicorn's "Exception in ASGI application\n" and a path from a request: one escaped line.
            lines = record.getMessage().strip().splitlines()
            message = f"routeshell: serve: {display_line(lines[0] if lines else '')}"
            if record.exc_info and record.exc_info[1] is not None:
                err = record.exc_info[1]
                message += f": {type(err).__name__}: {_first_line(err)}"
            return message

    def not_cancelled(record: logging.LogRecord) -> bool:
        # A second Ctrl-C cancels the requests in flight: that is what was asked, not a failure.
        import asyncio

        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLine())
    handler.addFilter(not_cancelled)
    for name in ("routeshell", "uvicorn", "uvicorn.error", "sse_starlette"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.WARNING)


class _EventLog:
    """What the server says: JSON-lines events (``--events``) or a readable log on stdout."""

    def __init__(self, events: bool) -> None:
        self.events = events
        self.requests = 0
        self.said_stopped = False

    def _emit(self, event: Mapping[str, Any]) -> None:
        from engine.events import json_line

        sys.stdout.write(json_line(event) + "\n")
        sys.stdout.flush()

    def _say(self, line: str) -> None:
        from engine.names import display_line

        print(display_line(line), flush=True)

    def ready(self, url: str, loaded: LoadedModel, engine_pid: int) -> None:
        if self.events:
            self._emit(
                {
                    "type": "serve_ready",
                    "url": url,
                    "models": loaded.model_ids(),
                    "dtype": loaded.dtype,
                    "device": loaded.device,
                    "pid": os.getpid(),
                    "engine_pid": engine_pid,
                }
            )
        else:
            models = ", ".join(loaded.model_ids())
            where = "" if loaded.device == "cpu" else f" on {loaded.device}"
            self._say(f"routeshell: serving {models} ({loaded.dtype}{where}) at {url}; Ctrl-C stops")

    def request(self, event: ServeRequestEvent) -> None:
        self.requests += 1
        if self.events:
            self._emit(event)
            return
        tokens = f"{event['prompt_tokens']}+{event['completion_tokens']} tokens"
        model = f" {event['model']}" if event["model"] else ""
        self._say(f"{event['method']} {event['path']} {event['status']}{model} {tokens} {event['elapsed_s']:.2f}s")

    def stopped(self, reason: str) -> None:
        if self.said_stopped:
            return
        self.said_stopped = True
        if self.events:
            self._emit({"type": "serve_stopped", "reason": reason, "requests": self.requests})
        else:
            self._say(f"routeshell: stopped after {self.requests} requests")

    def error(self, message: str, exit_code: int) -> None:
        if self.events:
            self._emit({"type": "error", "message": message, "exit_code": exit_code})
