"""The Serve pane: start ``routeshell serve`` on a trained model, watch its metrics and log, chat with it, stop it.

The server is a subprocess speaking JSON-lines events (:mod:`tui.serve_job`); the pane never
imports the model libraries. An async worker reads the server's stdout and stderr as they come and
posts each line back as a message: an event feeds the status line and the log, anything else goes
to the log, escaped. While the server runs, a thread worker reads ``/health`` every second for the
metrics (requests, tokens/s, waiting and running requests). The chat box (:mod:`serve_chat`) talks
to it through the shell's OpenAI client. Stop sends SIGINT, then SIGKILL if the server is still
there after a grace period; unmounting the pane (quitting the app) stops it the same way.

The models offered are the one sent from the Train pane (``s`` on its list of models) and the
finished models found under the Train pane's output directory and the profile's ``[serve]`` model.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Button, Input, RichLog, Select, Static
from textual.worker import Worker, WorkerState

from engine.config.profiles import Profile
from engine.names import display_line
from tui.error_line import error_text, one_line
from tui.process_job import Stream
from tui.serve_job import (
    STOP_GRACE_S,
    Health,
    ServeJob,
    ServeRequest,
    parse_serve_form,
    read_health,
    serve_event_summary,
)
from tui.train_job import FormError, find_models
from tui.widgets.serve_chat import ServeChat
from tui.widgets.serve_form import ServeForm
from tui.widgets.train_form import DEFAULT_OUT

MAX_LOG_LINES = 5000
#: How often the metrics are read from ``/health`` while the server runs.
POLL_S = 1.0
HINT = (
    "Choose a model and press Start (ctrl+g): the server runs in the background, OpenAI-compatible. "
    "Its requests and warnings show here, its metrics above, and the chat box below talks to it."
)


class ServePane(Vertical):
    """The form and the metrics on the left; status, server log and chat box on the right."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+g", "start", "Start", id="serve.start", tooltip="Start the server with the form's options"),
        Binding("ctrl+s", "stop", "Stop", id="serve.stop",
                tooltip="Stop the server (it finishes its requests; killed if it does not stop)"),
        Binding("f5", "rescan", "Rescan", show=False, id="serve.rescan",
                tooltip="Look for finished models under the Train pane's output directory again"),
        Binding("ctrl+l", "clear_log", "Clear log", show=False, id="serve.clear", tooltip="Clear the server log"),
    ]  # fmt: skip

    @dataclass
    class ServerLine(Message):
        """A line of the server that is not an event: ``problem`` says why, for JSON that breaks the contract."""

        stream: Stream
        text: str  # as the server wrote it, not yet escaped
        problem: str | None = None

    @dataclass
    class ServerEvent(Message):
        """A valid event of the server."""

        event: dict[str, Any]

    @dataclass
    class ServerEnded(Message):
        """The server exited with ``code``, or could not start (``error``)."""

        code: int | None
        error: str | None = None

    @dataclass
    class HealthRead(Message):
        """What ``/health`` said (``health``), or why it could not be read (``error``, not yet escaped)."""

        job: ServeJob
        health: Health | None
        error: str | None = None

    @dataclass
    class ModelsFound(Message):
        paths: list[Path]

    def __init__(self, workspace: Path, profile: Profile | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.workspace = workspace
        self.profile = profile
        self.job: ServeJob | None = None
        self.request: ServeRequest | None = None
        #: The latest metrics read from ``/health`` (None before the first).
        self.health: Health | None = None
        #: How the last server ended: its exit code (None while it runs or before any).
        self.exit_code: int | None = None
        self._poll_timer: Timer | None = None
        self._reading = False
        #: The log's lines as written (before wrapping), the newest last.
        self.logged: deque[str] = deque(maxlen=MAX_LOG_LINES)

    def compose(self) -> ComposeResult:
        with Horizontal(id="serve-body"):
            with Vertical(id="serve-left"):
                yield ServeForm(self.workspace, id="serve-form")
                yield Static("", id="serve-metrics", markup=False)
            with Vertical(id="serve-right"):
                yield Static("", id="serve-status", markup=False)
                yield RichLog(
                    id="serve-log", wrap=True, markup=False, highlight=False, max_lines=MAX_LOG_LINES, min_width=20
                )
                yield ServeChat(id="serve-chat")
        yield Static("", id="serve-notice", markup=False)

    def on_mount(self) -> None:
        self.form.set_running(False)
        self._log(Text(HINT, style="dim"))
        self._notice("no server yet", "dim")
        self._show_status()
        self._poll_timer = self.set_interval(POLL_S, self._poll, pause=True)
        self.scan_models()

    async def on_unmount(self) -> None:
        # Quitting the app must not leave a server behind: SIGINT, then SIGKILL.
        if self.job is not None and self.job.running:
            await self.job.stop(STOP_GRACE_S)

    @property
    def form(self) -> ServeForm:
        return self.query_one(ServeForm)

    @property
    def chat(self) -> ServeChat:
        return self.query_one(ServeChat)

    @property
    def log_widget(self) -> RichLog:
        return self.query_one("#serve-log", RichLog)

    @property
    def running(self) -> bool:
        """Whether a server started here has not exited yet (starting or listening)."""
        return self.job is not None and self.exit_code is None

    @property
    def model(self) -> Path | None:
        """The model chosen in the form."""
        return self.form.values().model

    @property
    def command(self) -> str | None:
        """The ``routeshell serve`` line of the server started last, or None before one."""
        return self.request.shown() if self.request is not None else None

    @property
    def notice(self) -> str:
        """The pane's one-line notice: a refused form, or how the server ended."""
        return self._notice_text.plain

    @property
    def status(self) -> str:
        """The status line as shown."""
        return self._status_text.plain

    def focus_form(self) -> None:
        """Put the keyboard focus on the form's first field."""
        self.form.model_select.focus()

    # -- the models offered -----------------------------------------------------------------

    def choose(self, model: Path) -> None:
        """Offer ``model`` (a finished model directory) and choose it."""
        self.form.offer([model], choose=model)

    def scan_models(self, train_out: Path | None = None) -> None:
        """Look for finished models (in a worker) under ``train_out`` (the Train pane's output directory),
        the Train form's default one, and the profile's ``[serve]`` model."""
        roots = [train_out] if train_out is not None else []
        roots.append(self.workspace / DEFAULT_OUT)
        served = self.profile.data.get("serve", {}).get("model") if self.profile is not None else None
        if isinstance(served, str):
            roots.append(Path(served).expanduser())
        self._scan(roots)

    @work(thread=True, exclusive=True, group="serve-scan", exit_on_error=False)
    def _scan(self, roots: list[Path]) -> None:
        found: list[Path] = []
        for root in roots:
            found += [path for path in find_models(root) if path not in found]
        self.post_message(self.ModelsFound(found))

    @on(ModelsFound)
    def _on_models_found(self, message: ModelsFound) -> None:
        self.form.offer(message.paths)

    def action_rescan(self) -> None:
        self.scan_models()

    # -- starting and stopping --------------------------------------------------------------

    def action_start(self) -> None:
        """Start the server the form describes, unless one runs or the form is wrong (one line says which)."""
        if self.running:
            self._notice("a server is running: stop it (ctrl+s) before starting another", "bold yellow")
            return
        values = self.form.values()
        try:
            request = parse_serve_form(
                values.model, values.adapters, values.host, values.port, values.dtype, values.api_key,
                base=self.workspace, device=values.device,
            )  # fmt: skip
        except FormError as exc:
            self._notice(f"cannot start: {exc}", "bold red")
            return
        self.request = request
        self.exit_code = None
        self.health = None
        self.job = ServeJob(request, self.workspace)
        self.form.set_running(True)
        self._log(Text(f"$ {display_line(request.shown())}", style="bold"))
        self._notice("starting: loading the model …", "bold")
        self._show_status()
        self._run_server(self.job)

    def action_stop(self) -> None:
        """Ask the server to stop (SIGINT); it is killed if it has not exited after the grace period."""
        if self.job is None or not self.running:
            self._notice("no server is running", "bold yellow")
            return
        if self.job.interrupted:
            self._notice(f"already stopping: the server is killed if it has not exited within {STOP_GRACE_S:.0f}s",
                         "yellow")  # fmt: skip
            return
        self._notice("stopping …", "yellow")
        self.run_worker(self.job.stop(STOP_GRACE_S), group="serve-stop", exit_on_error=False)

    def action_clear_log(self) -> None:
        self.log_widget.clear()
        self.logged.clear()

    @work(group="serve-job", exit_on_error=False)
    async def _run_server(self, job: ServeJob) -> None:
        try:
            await job.start()
        except OSError as exc:
            self.post_message(self.ServerEnded(None, f"cannot start the server: {one_line(exc)}"))
            return
        code: int | None = None
        try:
            code = await job.serve(self._post_event, self._post_line)
        finally:
            # Cancelled (the pane goes away) or failed while reading: the server must not outlive the pane.
            if job.running:
                code = await job.stop(STOP_GRACE_S)
        self.post_message(self.ServerEnded(code))

    def _post_event(self, event: dict[str, Any]) -> None:
        self.post_message(self.ServerEvent(event))

    def _post_line(self, stream: Stream, text: str, problem: str | None) -> None:
        self.post_message(self.ServerLine(stream, text, problem))

    # -- what the server says -----------------------------------------------------------------

    @on(ServerLine)
    def _on_server_line(self, message: ServerLine) -> None:
        line = Text(f"{message.stream}: ", style="dim")
        line.append(display_line(message.text), style="dim" if message.stream == "stderr" else "")
        if message.problem is not None:
            line.append(f"  ({display_line(message.problem)})", style="yellow")
        self._log(line)

    @on(ServerEvent)
    def _on_server_event(self, message: ServerEvent) -> None:
        event = message.event
        kind = event["type"]
        if kind == "serve_ready" and self.job is not None:
            self.chat.connect(self.job.url, self.job.models, self.job.client_key)
            self._notice(f"serving at {display_line(str(self.job.url))}", "bold green")
            if self._poll_timer is not None:
                self._poll_timer.resume()
            self._poll()
        style = {"error": "bold red", "serve_ready": "bold green", "serve_stopped": "bold"}.get(kind, "")
        self._log(Text(display_line(serve_event_summary(event)), style=style))
        self._show_status()

    @on(ServerEnded)
    def _on_server_ended(self, message: ServerEnded) -> None:
        if self._poll_timer is not None:
            self._poll_timer.pause()
        self.chat.connect(None, [], None)
        if message.code is None or self.job is None:
            self.exit_code = -1
            self._notice(message.error or "the server could not start", "bold red")
        else:
            self.exit_code = message.code
            ending = self.job.ending_line(message.code)
            line = f"server {display_line(ending)}"
            style = "bold" if ending == "stopped" else "bold red"
            self._notice(line, style)
            self._log(Text(line, style=style))
        self.form.set_running(False)
        self._show_status()

    # -- metrics ------------------------------------------------------------------------------

    def _poll(self) -> None:
        job = self.job
        if job is None or job.url is None or not self.running:
            return
        if self._reading:
            return  # the last reading has not come back yet: one at a time
        self._reading = True
        self._read_health(job, job.url, job.client_key)

    @work(thread=True, group="serve-health", exit_on_error=False)
    def _read_health(self, job: ServeJob, url: str, api_key: str | None) -> None:
        try:
            self.post_message(self.HealthRead(job, read_health(url, api_key=api_key)))
        except Exception as exc:
            # Not answering for a moment (busy, stopping) costs one reading, never the pane.
            self.post_message(self.HealthRead(job, None, error_text(exc)))

    @on(HealthRead)
    def _on_health_read(self, message: HealthRead) -> None:
        self._reading = False
        if message.job is not self.job or not self.running:
            return
        if message.health is not None:
            self.health = message.health
        self._show_status(message.error)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Show a worker's failure as one escaped line; the pane stays usable."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            reason = one_line(event.worker.error, unexpected=True)
            if event.worker.group == "serve-job":
                self.post_message(self.ServerEnded(None, f"the server's reader failed: {reason}"))
            else:
                self.notify(reason, title="Error", severity="error", markup=False)

    # -- the form's own keys ------------------------------------------------------------------

    @on(Button.Pressed, "#serve-start")
    def _on_start_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_start()

    @on(Button.Pressed, "#serve-stop")
    def _on_stop_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_stop()

    @on(Input.Submitted, "#serve-form Input")
    def _on_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    @on(Select.Changed, "#serve-model")
    def _on_model_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._show_status()

    # -- status -------------------------------------------------------------------------------

    def _log(self, line: Text) -> None:
        self.logged.append(line.plain)
        self.log_widget.write(line)

    def _notice(self, text: str, style: str) -> None:
        self._notice_text = Text(text, style=style)
        self.query_one("#serve-notice", Static).update(self._notice_text)

    def _show_status(self, problem: str | None = None) -> None:
        job = self.job
        if job is None or not self.running:
            state = "idle"
        elif job.interrupted:
            state = "stopping"
        elif job.url is None:
            state = "starting"
        else:
            state = "serving"  # the address is in the notice and the metrics: the status stays short
        parts = [state]
        if self.running and job is not None and job.url is not None:
            parts.append(self.health.summary() if self.health is not None else "reading metrics …")
            if problem is not None:
                parts.append(f"metrics: {problem}")
        self._status_text = Text(display_line(" · ".join(parts)), style="bold" if self.running else "")
        self.query_one("#serve-status", Static).update(self._status_text)
        self._show_metrics()

    def _show_metrics(self) -> None:
        job, health = self.job, self.health
        text = Text()
        text.append("model    ", style="dim")
        model = self.request.model if self.running and self.request is not None else self.model
        text.append(display_line(str(model)) if model is not None else "none chosen", style="" if model else "dim")
        if self.running and job is not None and job.ready is not None:
            text.append("\nurl      ", style="dim")
            text.append(display_line(str(job.url)))
            text.append("\nserves   ", style="dim")
            text.append(display_line(", ".join(job.models)))
        if health is not None and self.running:
            for label, value in (
                ("requests", health.requests),
                ("tokens/s", None if health.tokens_per_s is None else f"{health.tokens_per_s:,.1f}"),
                ("waiting", health.waiting),
                ("running", health.running),
            ):
                text.append(f"\n{label:<9}", style="dim")
                text.append("-" if value is None else str(value))
        self.query_one("#serve-metrics", Static).update(text)
