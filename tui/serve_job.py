"""The model server behind the Serve pane: its command line, its event stream, its health and its end.

The pane never imports the model libraries: it runs ``routeshell serve ... --events`` as a
subprocess (``python -m tui serve``, in its own process group: :class:`tui.process_job.ProcessJob`)
and reads one JSON event a line from its stdout: ``serve_ready`` (the OpenAI base URL and the
model ids), ``serve_request`` per request, ``serve_stopped``. This module holds what does not need
a widget: checking the form (:func:`parse_serve_form`), the command (:meth:`ServeRequest.argv`),
running the server and keeping what its end is told by (:class:`ServeJob`), reading ``/health``
(:func:`read_health`) and the log line of an event (:func:`serve_event_summary`).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from engine.child_process import guarded_argv
from engine.errors import ExitCode
from engine.llm.deadline import http_get
from engine.names import display_name, shell_line
from engine.serve.launcher import health_url
from engine.urls import api_key_problem
from tui.process_job import ProcessJob, Stream, parse_event_line
from tui.serve_cli import DEVICES, DTYPES
from tui.train_job import FormError

#: The events of ``routeshell serve --events`` that the pane reads.
SERVE_EVENTS = frozenset({"serve_ready", "serve_request", "serve_stopped", "error"})
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: How long the server has after SIGINT to finish its requests and exit, before it is killed.
STOP_GRACE_S = 10.0
#: How long one ``/health`` request may take.
HEALTH_TIMEOUT_S = 2.0
#: The variable the server takes its API key from when ``--api-key`` is not given.
KEY_ENV = "ROUTESHELL_API_KEY"
#: A served model id (an adapter's name), as ``--adapter NAME=DIR`` takes it.
ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

#: What a line of the server's output is handed to: its stream, its text (not yet escaped) and,
#: for JSON on stdout that breaks the event contract, why.
LineSink = Callable[[Stream, str, "str | None"], None]


@dataclass(frozen=True)
class ServeRequest:
    """One ``routeshell serve`` as the form describes it; paths are absolute."""

    model: Path
    adapters: tuple[tuple[str, Path], ...] = ()
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    dtype: str = "auto"
    api_key: str | None = None
    #: Where the weights load: ``cpu``, ``cuda`` or ``auto`` (a CUDA device where torch sees one).
    device: str = "cpu"

    def words(self) -> list[str]:
        """Return the arguments after ``routeshell``. The API key is not among them: it goes in the
        server's environment (:meth:`env`), where other users cannot read it as they can a command line."""
        words = ["serve", "--model", str(self.model)]
        for name, path in self.adapters:
            words += ["--adapter", f"{name}={path}"]
        words += ["--host", self.host, "--port", str(self.port), "--dtype", self.dtype]
        if self.device != "cpu":
            words += ["--device", self.device]
        return [*words, "--events"]

    def argv(self) -> list[str]:
        """Return the command that runs this server with the same Python and the same routeshell as the app;
        it stops itself (SIGTERM) when the app is gone, however the app ended."""
        return guarded_argv(signal.SIGTERM, *self.words())

    def env(self) -> dict[str, str]:
        """Return the variables the server needs on top of the app's: the API key, when one is given."""
        return {KEY_ENV: self.api_key} if self.api_key else {}

    def shown(self) -> str:
        """Return the server as a ``routeshell serve`` line for the log."""
        return shell_line(["routeshell", *self.words()])


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is an address of this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def parse_serve_form(
    model: Path | None,
    adapters: str,
    host: str,
    port: str,
    dtype: str,
    api_key: str,
    *,
    base: Path,
    device: str = "cpu",
) -> ServeRequest:
    """Return the server the form asks for, with relative adapter paths taken from ``base`` (the workspace).

    ``adapters`` is zero or more ``NAME=DIR`` words, split like a shell line; ``port`` is a whole
    number from 0 (any free port) to 65535; a host other than loopback needs ``api_key`` (or
    ``$ROUTESHELL_API_KEY``, which the server reads itself). Raises
    :class:`FormError` with one line for anything that cannot start a server.
    """
    if model is None:
        raise FormError("choose a model: a finished one from the Train pane (3, then s), or press f5 to look again")
    try:
        words = shlex.split(adapters)
    except ValueError as exc:
        raise FormError(f"the adapters do not parse ({exc}): quote a path that holds spaces") from None
    pairs: list[tuple[str, Path]] = []
    for word in words:
        name, sep, path = word.partition("=")
        if not sep or not path:
            raise FormError(f"an adapter is NAME=DIR, not {display_name(word)!r}")
        if not ADAPTER_NAME.match(name):
            raise FormError(f"adapter name {display_name(name)!r}: use letters, digits, '.', '_' or '-'")
        if name in (n for n, _ in pairs):
            raise FormError(f"adapter name {display_name(name)!r} is given twice")
        pairs.append((name, base / Path(path).expanduser()))
    host = host.strip()
    if not host:
        raise FormError(f"the host is empty: type {DEFAULT_HOST} to serve this machine only")
    try:
        number = int(port.strip())
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise FormError(f"the port must be a whole number from 0 (any free port) to 65535, not {display_name(port)!r}")
    if dtype not in DTYPES:
        raise FormError(f"choose a weight format: {', '.join(DTYPES)}")
    if device not in DEVICES:
        raise FormError(f"choose where the model runs: {', '.join(DEVICES)}")
    key = api_key.strip() or None
    problem = None if key is None else api_key_problem(key)
    if problem is not None:  # the server would refuse it, and no client could send it
        raise FormError(f"the API key {problem}")
    if key is None and not os.environ.get(KEY_ENV) and not is_loopback_host(host):
        raise FormError(f"serving on {display_name(host)} opens the model to the network: give an API key")
    return ServeRequest(
        model=model, adapters=tuple(pairs), host=host, port=number, dtype=dtype, api_key=key, device=device
    )


def parse_serve_line(line: str) -> tuple[dict[str, Any] | None, str | None]:
    """Return ``(event, None)`` for a line holding a valid server event, else ``(None, why)`` (see
    :func:`tui.process_job.parse_event_line`)."""
    return parse_event_line(line, SERVE_EVENTS, "server")


class ServeJob(ProcessJob):
    """One running ``routeshell serve --events`` process, with what its end will be told by.

    ``ready`` is its ``serve_ready`` event once it listens; ``error`` the message of an ``error``
    event; ``stderr_tail`` the last line it wrote on stderr.
    """

    def __init__(self, request: ServeRequest, cwd: Path) -> None:
        super().__init__(request.argv(), cwd, env=request.env(), guarded=True)
        self.request = request
        self.ready: dict[str, Any] | None = None
        self.stopped: dict[str, Any] | None = None
        self.error: str | None = None
        self.stderr_tail: str | None = None
        #: The key a client sends: the form's, else the one the server reads from the environment.
        self.client_key = request.api_key or os.environ.get(KEY_ENV) or None

    @property
    def url(self) -> str | None:
        """The OpenAI base URL (ending in ``/v1``) once the server listens, else None."""
        return str(self.ready["url"]) if self.ready is not None else None

    @property
    def models(self) -> list[str]:
        """The model ids the server answers to (the base model first), once it listens."""
        return [str(m) for m in self.ready["models"]] if self.ready is not None else []

    async def serve(self, on_event: Callable[[dict[str, Any]], None], on_line: LineSink) -> int:
        """Run the server until it exits: each event to ``on_event``, every other line to ``on_line``.

        Returns the exit code. The job must have been started.
        """

        def feed(stream: Stream, text: str) -> None:
            if stream == "stderr":
                if text.strip():
                    self.stderr_tail = text.strip()
                on_line(stream, text, None)
                return
            event, problem = parse_serve_line(text)
            if event is None:
                on_line(stream, text, problem)
                return
            kind = event["type"]
            if kind == "serve_ready":
                self.ready = event
            elif kind == "serve_stopped":
                self.stopped = event
            elif kind == "error":
                self.error = str(event["message"])
            on_event(event)

        return await self.run(feed)

    async def stop(self, grace: float = STOP_GRACE_S) -> int | None:
        """Interrupt the server (it finishes and exits), kill it if still running after ``grace`` seconds."""
        return await super().stop(grace)

    def ending_line(self, code: int) -> str:
        """Return one line (not yet escaped) saying how the server that exited with ``code`` ended."""
        if self.interrupted and code in (ExitCode.OK, ExitCode.INTERRUPTED, -signal.SIGINT):
            return "stopped"
        if code < 0:
            try:
                what = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                what = f"killed by signal {-code}"
        else:
            what = "exited" if code == ExitCode.OK else f"exited with code {code}"
        if self.ready is None:
            what = f"did not start ({what})"
        reason = self.error or self.stderr_tail
        return f"{what}: {reason}" if reason else what


# -- health ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    """What ``GET /health`` says; a field the server did not give (or gave as junk) is None."""

    status: str | None = None
    requests: int | None = None
    tokens_per_s: float | None = None
    waiting: int | None = None
    running: int | None = None

    @classmethod
    def parse(cls, data: object) -> Health:
        """Return the health in ``data`` (the decoded JSON body), keeping only well-typed fields."""
        if not isinstance(data, dict):
            return cls()

        def whole(key: str) -> int | None:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

        rate = data.get("tokens_per_s")
        status = data.get("status")
        return cls(
            status=status[:40] if isinstance(status, str) else None,
            requests=whole("requests"),
            tokens_per_s=float(rate) if isinstance(rate, int | float) and not isinstance(rate, bool) else None,
            waiting=whole("waiting"),
            running=whole("running"),
        )

    def summary(self) -> str:
        """Return the metrics as one line (not yet escaped): ``3 requests · 41.2 tok/s · waiting 0 · running 1``."""
        parts = []
        if self.requests is not None:
            parts.append(f"{self.requests:,} request{'' if self.requests == 1 else 's'}")
        if self.tokens_per_s is not None:
            parts.append(f"{self.tokens_per_s:,.1f} tok/s")
        if self.waiting is not None:
            parts.append(f"waiting {self.waiting}")
        if self.running is not None:
            parts.append(f"running {self.running}")
        if self.status is not None and self.status != "ok":
            parts.append(self.status)
        return " · ".join(parts) or "no metrics"


def read_health(base_url: str, *, api_key: str | None = None, timeout: float = HEALTH_TIMEOUT_S) -> Health:
    """Return what ``GET /health`` of the server at ``base_url`` says (blocking: call it from a worker).

    Raises ``httpx.HTTPError`` when the server does not answer in ``timeout`` seconds, and
    ``ValueError`` when it answers with something that is not JSON or with an error status.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    response = http_get(health_url(base_url), timeout_s=timeout, headers=headers)
    if response.status_code != 200:
        raise ValueError(f"/health answered HTTP {response.status_code}")
    return Health.parse(response.json())


def serve_event_summary(event: dict[str, Any]) -> str:
    """Return one log line (not yet escaped) for a server event."""
    kind = event["type"]
    if kind == "serve_ready":
        models = ", ".join(str(m) for m in event["models"])
        where = "" if event.get("device", "cpu") == "cpu" else f" on {event['device']}"
        return f"ready at {event['url']} (pid {event['pid']}, {event['dtype']}{where}): {models}"
    if kind == "serve_request":
        model = f" {event['model']}" if event.get("model") else ""
        tokens = event["prompt_tokens"] + event["completion_tokens"]
        counts = f", {event['prompt_tokens']}+{event['completion_tokens']} tokens" if tokens else ""
        return f"{event['method']} {event['path']} {event['status']}{model}{counts} in {event['elapsed_s']:.2f}s"
    if kind == "serve_stopped":
        why = "on a signal" if event["reason"] == "signal" else "on an error"
        return f"stopped {why} after {event['requests']:,} requests"
    if kind == "error":
        return f"error (exit {event['exit_code']}): {event['message']}"
    return str(event)
