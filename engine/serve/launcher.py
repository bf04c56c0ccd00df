"""The local profile's model server: started when the endpoint is needed and not answering, stopped on exit.

A profile whose ``llm.default.base_url`` is on this machine (loopback) and which has a ``[serve]``
table names a model to serve there. Before ``routeshell run`` or the shell's Agent pane talks to
the endpoint, :meth:`LocalServer.ensure` asks ``GET /health``; when nothing answers, it starts
``routeshell serve --model ... --host 127.0.0.1 --port <the profile's port> --name <the profile's
model> --events`` in its own process group, waits (bounded) for its ``serve_ready`` event, and
:meth:`LocalServer.close` stops it again (SIGINT, then SIGKILL). A server that was already
running (another shell, the Serve pane) is used and left alone.

Nothing here loads a model library: the server is another process.
"""

from __future__ import annotations

import atexit
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import IO, Literal
from urllib.parse import urlsplit

from engine.child_process import child_env, guarded_argv, signal_group
from engine.config.profiles import Profile
from engine.errors import ExitCode, RouteshellError
from engine.llm.deadline import http_get
from engine.names import display_name, shell_line

#: The files that make a directory a finished, loadable model: its config, and its weights whole or
#: the index of their shards.
MODEL_FILES = ("config.json", "model.safetensors")
SHARDED_WEIGHTS = "model.safetensors.index.json"
#: Where ``routeshell train all --out DIR`` leaves its models, the one to serve first.
STAGE_DIRS = ("sft", "reasoning", "pretrain")
DEFAULT_START_TIMEOUT_S = 120.0
#: How long a ``/health`` probe may take before the endpoint counts as not answering.
PROBE_TIMEOUT_S = 2.0
#: How long a server has after SIGINT to finish its requests and exit, before it is killed.
STOP_GRACE_S = 10.0

Probe = Literal["ready", "other", "absent"]


class ServerStartError(RouteshellError):
    """The local model server is missing its model, or could not start (exit code 3, the endpoint failed)."""

    exit_code = ExitCode.ENDPOINT


def is_model_dir(path: Path) -> bool:
    """Whether ``path`` holds a finished, loadable model (its config and weights). Touches the disk."""
    config, weights = MODEL_FILES
    return (path / config).is_file() and ((path / weights).is_file() or (path / SHARDED_WEIGHTS).is_file())


def served_model(path: Path) -> Path | None:
    """Return the model to serve for ``path``: ``path`` itself when it is a finished model, else the
    first finished one of its stage directories (``sft``, ``reasoning``, ``pretrain``), else None."""
    for candidate in (path, *(path / stage for stage in STAGE_DIRS)):
        try:
            if is_model_dir(candidate):
                return candidate
        except OSError:
            continue
    return None


def health_url(base_url: str) -> str:
    """Return the ``/health`` URL of the server whose OpenAI base URL is ``base_url`` (``.../v1``)."""
    root = base_url.rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return f"{root}/health"


def is_loopback(base_url: str) -> bool:
    """Whether ``base_url`` is an http URL on this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeSettings:
    """What to serve for a profile, and where: from its ``[serve]`` table and ``llm.default`` endpoint.

    ``model`` is the configured path (a model, or a ``train all`` output directory); ``name`` is the
    model id the agents ask for (the profile's ``llm.default.model``).
    """

    model: Path
    base_url: str
    port: int
    name: str
    dtype: str = "auto"
    device: str = "cpu"
    adapters: tuple[tuple[str, Path], ...] = ()
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S

    def words(self, model: Path) -> list[str]:
        """Return the arguments after ``routeshell`` that serve ``model`` (the resolved model directory)."""
        words = ["serve", "--model", str(model), "--host", "127.0.0.1", "--port", str(self.port)]
        words += ["--name", self.name, "--dtype", self.dtype]
        if self.device != "cpu":  # (the server's default)
            words += ["--device", self.device]
        for adapter, path in self.adapters:
            words += ["--adapter", f"{adapter}={path}"]
        return [*words, "--events"]


def serve_settings(profile: Profile, *, base_url: str | None = None, model: str | None = None) -> ServeSettings | None:
    """Return what the local server of ``profile`` serves, or None when the profile has none to start.

    None when the profile has no ``[serve]`` table, when its ``llm.default.base_url`` is not a
    loopback http URL, or when ``base_url`` (``--base-url``) points somewhere else. ``model``
    (``--model``) replaces the profile's model id, so that the server answers to the name asked for.
    """
    section = profile.data.get("serve")
    if not isinstance(section, Mapping):
        return None
    default = profile.data["llm"]["default"]
    served_url, name = str(default["base_url"]), model or str(default["model"])
    if base_url is not None and base_url.rstrip("/") != served_url.rstrip("/"):
        return None
    if not is_loopback(served_url):
        return None
    parts = urlsplit(served_url)
    try:
        port = parts.port or 80
    except ValueError:
        return None  # a port the URL cannot hold; the client says what is wrong with it
    adapters = tuple((name, _path(path)) for name, path in dict(section.get("adapters", {})).items())
    return ServeSettings(
        model=_path(section["model"]),
        base_url=served_url,
        port=port,
        name=name,
        dtype=str(section.get("dtype", "auto")),
        device=str(section.get("device", "cpu")),
        adapters=adapters,
        start_timeout_s=float(section.get("start_timeout_s", DEFAULT_START_TIMEOUT_S)),
    )


#: The models that ship inside the package (the base and its adapters), named ``routeshell:NAME``.
SHIPPED_PREFIX = "routeshell:"


def shipped_models() -> Path:
    """The directory of the models that ship with routeshell (``engine/models``)."""
    return Path(__file__).resolve().parent.parent / "models"


def _path(value: str) -> Path:
    if value.startswith(SHIPPED_PREFIX):
        return shipped_models() / value[len(SHIPPED_PREFIX) :]
    return Path(value).expanduser().absolute()


def probe(base_url: str, *, timeout: float = PROBE_TIMEOUT_S) -> Probe:
    """Ask the server at ``base_url`` for ``/health``: ``ready`` (it answered 200), ``other`` (something
    answered, not with 200) or ``absent`` (nothing answered in ``timeout`` seconds)."""
    import httpx  # here: its package loads rich, which the engine must not load at import time

    try:
        response = http_get(health_url(base_url), timeout_s=timeout)
    except httpx.HTTPError:
        return "absent"
    return "ready" if response.status_code == 200 else "other"


def wait_ready(
    base_url: str, process: subprocess.Popen[bytes] | None = None, *, timeout: float, interval: float = 0.25
) -> Probe:
    """Probe ``base_url`` until its ``/health`` answers 200, ``process`` (the server, when it was
    started by the caller) exits, or ``timeout`` seconds pass; return the last probe."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe(base_url, timeout=min(PROBE_TIMEOUT_S, max(0.1, deadline - time.monotonic())))
        if found == "ready" or (process is not None and process.poll() is not None):
            return found
        if time.monotonic() >= deadline:
            return found
        time.sleep(interval)


class LocalServer:
    """A profile's model server: :meth:`ensure` starts it when needed, :meth:`close` stops what it started.

    Use it as a context manager. A server started here is also stopped when the process exits
    normally (``atexit``) and by :func:`stop_started_servers` (a SIGINT handler that leaves at once).
    """

    def __init__(self, settings: ServeSettings, *, cwd: Path | None = None) -> None:
        self.settings = settings
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        #: The ``serve_ready`` event of the server started here.
        self.ready: dict[str, object] | None = None
        self.stderr_tail: str | None = None
        self._ready = threading.Event()
        self._readers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def started(self) -> bool:
        """Whether a server started here is running."""
        return self.process is not None and self.process.poll() is None

    def ensure(
        self, on_start: Callable[[str], None] | None = None, meanwhile: Callable[[], None] | None = None
    ) -> bool:
        """Make sure the endpoint answers: start the server unless something answers already.

        ``on_start`` gets one line (the command) just before a server is started, for the user to
        see why the first request waits. ``meanwhile`` is called once the server's process is
        started, before waiting for it to be ready, and only then: work of the caller's that does
        not need the server runs while the server loads its model in a process of its own. Should
        it raise, the server is stopped and the error goes on. Returns True when a server was
        started now, False when one was answering. Raises :class:`ServerStartError` (one line)
        when there is no model to serve, or the server dies or does not become ready within
        ``start_timeout_s``.
        """
        with self._lock:
            if self.started or probe(self.settings.base_url) != "absent":
                return False
            model = served_model(self.settings.model)
            if model is None:
                where = self.settings.model
                raise ServerStartError(
                    f"no model to serve at {display_name(str(where))} yet: make one with "
                    f"{shell_line(['routeshell', 'train', 'all', '--out', str(where)])} "
                    "(or in the shell's Train pane), then run this again"
                )
            words = self.settings.words(model)
            if on_start is not None:
                on_start(f"starting the local model server: routeshell {' '.join(words)}")
            return self._start(words, meanwhile)

    def _start(self, words: list[str], meanwhile: Callable[[], None] | None) -> bool:
        """Start the server, call ``meanwhile``, and wait for the server; False when it lost the port to
        another one now answering."""
        self._ready.clear()
        self.ready = None
        self.stderr_tail = None
        try:
            self.process = subprocess.Popen(
                # Stopped by close() or at exit; and should this process be killed, its end closes
                # the server's stdin, and the server stops itself (tui.orphan_guard).
                guarded_argv(signal.SIGTERM, *words),
                cwd=self.cwd,
                env=child_env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise ServerStartError(f"cannot start the local model server: {exc.strerror or exc}") from None
        _STARTED.add(self)
        process = self.process
        assert process.stdout is not None
        assert process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read_stdout, args=(process.stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(process.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        deadline = time.monotonic() + self.settings.start_timeout_s
        if meanwhile is not None:
            try:
                meanwhile()
            except BaseException:
                self.close()
                raise
        while not self._ready.wait(0.1):
            if process.poll() is not None:
                # The stderr reader may still hold the last line: let it finish first.
                self._readers[1].join(timeout=2.0)
                why = f": {self.stderr_tail}" if self.stderr_tail else ""
                if self.settings.device != "cpu" and "--device" in why:
                    # (the server speaks of its option; this device came from the profile)
                    why += f' (the profile\'s [serve] table says device = "{self.settings.device}": set it to "cpu")'
                self.close()
                if probe(self.settings.base_url) == "ready":
                    return False  # another shell started one on the same port meanwhile: use it
                raise ServerStartError(f"the local model server exited with code {process.returncode}{why}")
            if time.monotonic() > deadline:
                self.close()
                raise ServerStartError(
                    f"the local model server was not ready within {self.settings.start_timeout_s:g} s; "
                    "raise start_timeout_s in the profile's [serve] table, or start it yourself: "
                    f"routeshell {' '.join(words)}"
                )
        return True

    def _read_stdout(self, stream: IO[bytes]) -> None:
        # Read to the end, so a server that logs every request never blocks on a full pipe.
        for raw in stream:
            if self._ready.is_set():
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("type") == "serve_ready":
                self.ready = event
                self._ready.set()

    def _read_stderr(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self.stderr_tail = line[:500]

    def close(self) -> None:
        """Stop the server started here, if any (SIGINT, then SIGKILL after a grace period); idempotent."""
        process, self.process = self.process, None
        _STARTED.discard(self)
        if process is None:
            return
        if process.poll() is None:
            signal_group(process, signal.SIGINT)
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                signal_group(process, signal.SIGKILL)
                process.wait()
        for reader in self._readers:
            reader.join(timeout=2.0)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def local_server_for(
    profile: Profile, *, base_url: str | None = None, model: str | None = None, cwd: Path | None = None
) -> LocalServer | None:
    """Return the server :meth:`LocalServer.ensure` may start for ``profile``, or None when it has none
    (see :func:`serve_settings`). Starts nothing and touches neither the disk nor the network."""
    settings = serve_settings(profile, base_url=base_url, model=model)
    return None if settings is None else LocalServer(settings, cwd=cwd)


#: The servers started by this process and still running, stopped at exit whatever happens.
_STARTED: set[LocalServer] = set()


def stop_started_servers() -> None:
    """Stop every server this process started (from a signal handler about to ``os._exit``, or at exit)."""
    for server in list(_STARTED):
        server.close()


atexit.register(stop_started_servers)
