"""The Train pane: start a ``routeshell train`` job, watch it learn, stop it, resume it, pick its model.

The job is a subprocess speaking JSON-lines events (:mod:`tui.train_job`); the pane never imports
the training libraries. An async worker reads the job's stdout and stderr as they come and posts
each line back as a message: a training event feeds the chart, the status line, the log and the
list of models; anything else goes to the log, escaped. Cancel sends SIGINT (the job writes its
checkpoint and exits 130), then SIGKILL if it is still there after a grace period; Resume runs the
same command with ``--resume``. Unmounting the pane (quitting the app) stops a running job the same
way, so no job outlives the app.
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
from textual.widgets import Button, Input, RichLog, Select, Static
from textual.worker import Worker, WorkerState

from engine.errors import ExitCode
from engine.names import display_line
from tui.error_line import one_line
from tui.process_job import Stream
from tui.train_job import (
    GRACE_S,
    FormError,
    TrainJob,
    TrainRequest,
    ending_line,
    event_summary,
    parse_event_line,
    parse_form,
)
from tui.widgets.checkpoint_list import CheckpointKind, CheckpointList
from tui.widgets.loss_chart import LossChart
from tui.widgets.train_form import TrainForm

MAX_LOG_LINES = 5000
HINT = (
    "Fill in the form and press Start (ctrl+g). The job runs in the background: the chart shows its training "
    "and validation loss, this log its events and warnings, the list on the left the models it leaves."
)


@dataclass
class Progress:
    """What the status line shows of the running stage."""

    stage: str = ""
    step: int = 0
    max_steps: int = 0
    loss: float | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None
    perplexity: float | None = None


class TrainPane(Vertical):
    """The form, the models and their cards on the left; status, loss chart and log on the right."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+g", "start", "Start", id="train.start", tooltip="Start a training job with the form's options"),
        Binding("ctrl+s", "cancel", "Cancel", id="train.cancel",
                tooltip="Stop the job: it writes a checkpoint and can be resumed (killed if it does not stop)"),
        Binding("ctrl+r", "resume", "Resume", id="train.resume",
                tooltip="Run the interrupted job again with --resume, from its checkpoint"),
        Binding("ctrl+l", "clear_log", "Clear log", show=False, id="train.clear", tooltip="Clear the job log"),
    ]  # fmt: skip

    @dataclass
    class JobLine(Message):
        """A line of the job that is not a training event: ``problem`` says why, for JSON that breaks the contract."""

        stream: Stream
        text: str  # as the job wrote it, not yet escaped
        problem: str | None = None

    @dataclass
    class JobEvent(Message):
        """A valid training event of the job."""

        event: dict[str, Any]

    @dataclass
    class JobEnded(Message):
        """The job exited with ``code``, or could not start (``error``)."""

        code: int | None
        error: str | None = None

    def __init__(self, workspace: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.workspace = workspace
        self.job: TrainJob | None = None
        self.request: TrainRequest | None = None
        self.progress = Progress()
        #: How the last job ended: its exit code (None while running or before any job).
        self.exit_code: int | None = None
        self.resumable = False
        self._error: str | None = None
        self._stderr_tail: str | None = None
        self._interrupted = False
        #: The log's lines as written (before wrapping), the newest last.
        self.logged: deque[str] = deque(maxlen=MAX_LOG_LINES)

    def compose(self) -> ComposeResult:
        with Horizontal(id="train-body"):
            with Vertical(id="train-left"):
                yield TrainForm(id="train-form")
                yield CheckpointList(id="train-checkpoints")
            with Vertical(id="train-right"):
                yield Static("", id="train-status", markup=False)
                yield LossChart(id="train-chart")
                yield RichLog(
                    id="train-log", wrap=True, markup=False, highlight=False, max_lines=MAX_LOG_LINES, min_width=20
                )
        yield Static("", id="train-notice", markup=False)

    def on_mount(self) -> None:
        self.form.set_running(False, resumable=False)
        self._log(Text(HINT, style="dim"))
        self._show_status()
        self._notice("no job yet", "dim")

    async def on_unmount(self) -> None:
        # Quitting the app must not leave a job behind: SIGINT (it checkpoints), then SIGKILL.
        if self.job is not None and self.job.running:
            await self.job.stop(GRACE_S)

    @property
    def form(self) -> TrainForm:
        return self.query_one(TrainForm)

    @property
    def chart(self) -> LossChart:
        return self.query_one(LossChart)

    @property
    def checkpoints(self) -> CheckpointList:
        return self.query_one(CheckpointList)

    @property
    def log_widget(self) -> RichLog:
        return self.query_one("#train-log", RichLog)

    @property
    def running(self) -> bool:
        return self.job is not None and self.exit_code is None

    @property
    def notice(self) -> str:
        """The pane's one-line notice: a refused form, or how the last job ended."""
        return self._notice_text.plain

    @property
    def status(self) -> str:
        """The status line as shown."""
        return self._status_text.plain

    def focus_form(self) -> None:
        """Put the keyboard focus on the form's first field."""
        self.query_one("#train-stage", Select).focus()

    # -- starting, stopping, resuming ------------------------------------------------------

    def action_start(self) -> None:
        """Start the job the form describes, unless one runs or the form is wrong (one line says which)."""
        if self.running:
            self._notice("a job is running: cancel it (ctrl+s) before starting another", "bold yellow")
            return
        values = self.form.values()
        try:
            request = parse_form(
                values.stage, values.preset, values.data, values.max_steps, values.out, base=self.workspace
            )
        except FormError as exc:
            self._notice(f"cannot start: {exc}", "bold red")
            return
        self._launch(request, resume=False)

    def action_resume(self) -> None:
        """Run the last job again with ``--resume``: it continues from the checkpoint it wrote when stopped."""
        if self.running:
            self._notice("a job is running: it can be resumed once it has stopped", "bold yellow")
            return
        if self.request is None or not self.resumable:
            self._notice("nothing to resume: Resume continues a job that was cancelled", "bold yellow")
            return
        self._launch(self.request, resume=True)

    def action_cancel(self) -> None:
        """Ask the running job to stop (SIGINT); it is killed if it has not exited after the grace period."""
        if self.job is None or not self.running:
            self._notice("no job is running", "bold yellow")
            return
        if self.job.interrupted:
            self._notice(f"already stopping: the job is killed if it has not exited within {GRACE_S:.0f}s", "yellow")
            return
        self._notice("stopping: the job writes its checkpoint, then exits …", "yellow")
        self.run_worker(self.job.stop(GRACE_S), group="train-stop", exit_on_error=False)

    def action_clear_log(self) -> None:
        self.log_widget.clear()
        self.logged.clear()

    def _log(self, line: Text) -> None:
        self.logged.append(line.plain)
        self.log_widget.write(line)

    def _launch(self, request: TrainRequest, *, resume: bool) -> None:
        self.request = request
        self.exit_code = None
        self.resumable = False
        self._error = self._stderr_tail = None
        self._interrupted = False
        self.job = TrainJob(request.argv(resume=resume), self.workspace)
        if not resume:
            self.progress = Progress()
            self.chart.reset("")
        self.checkpoints.show_output_dir(request.out)
        self.form.set_running(True, resumable=False)
        self._log(Text(f"$ {display_line(request.shown(resume=resume))}", style="bold"))
        self._notice("resuming …" if resume else "starting …", "bold")
        self._show_status()
        self._run_job(self.job)

    @work(group="train-job", exit_on_error=False)
    async def _run_job(self, job: TrainJob) -> None:
        try:
            await job.start()
        except OSError as exc:
            self.post_message(self.JobEnded(None, f"cannot start the job: {one_line(exc)}"))
            return
        code: int | None = None
        try:
            code = await job.run(self._on_line)
        finally:
            # Cancelled (the pane goes away) or failed while reading: the job must not outlive the pane.
            if job.running:
                code = await job.stop(GRACE_S)
        self.post_message(self.JobEnded(code))

    def _on_line(self, stream: Stream, text: str) -> None:
        if stream == "stdout":
            event, problem = parse_event_line(text)
            if event is not None:
                self.post_message(self.JobEvent(event))
                return
            self.post_message(self.JobLine(stream, text, problem))
        else:
            self.post_message(self.JobLine(stream, text))

    # -- what the job says -----------------------------------------------------------------

    @on(JobLine)
    def _on_job_line(self, message: JobLine) -> None:
        if message.stream == "stderr" and message.text.strip():
            self._stderr_tail = message.text.strip()
        line = Text(f"{message.stream}: ", style="dim")
        line.append(display_line(message.text), style="dim" if message.stream == "stderr" else "")
        if message.problem is not None:
            line.append(f"  ({display_line(message.problem)})", style="yellow")
        self._log(line)

    @on(JobEvent)
    def _on_job_event(self, message: JobEvent) -> None:
        event = message.event
        kind = event["type"]
        progress = self.progress
        if kind == "train_start":
            if event.get("resumed_from") is None or event["stage"] != self.chart.stage:
                self.chart.reset(event["stage"])
            progress.stage, progress.max_steps = event["stage"], event["max_steps"]
            progress.perplexity = progress.eta_s = progress.tokens_per_s = progress.loss = None
        elif kind == "train_step":
            progress.stage, progress.step, progress.max_steps = event["stage"], event["step"], event["max_steps"]
            progress.loss, progress.tokens_per_s, progress.eta_s = event["loss"], event["tokens_per_s"], event["eta_s"]
            if self.chart.train and self.chart.train[-1][0] >= event["step"]:
                self.chart.forget_after(event["step"] - 1)  # a resumed run redraws from its checkpoint
            self.chart.add_train(event["step"], event["loss"])
        elif kind == "train_eval":
            progress.perplexity = event["perplexity"]
            self.chart.add_eval(event["step"], event["eval_loss"])
        elif kind == "checkpoint":
            note = f"{event['stage']}, step {event['step']}"
            holds: CheckpointKind = (
                "tokenizer" if event["stage"] == "tokenizer" else "model" if event["final"] else "checkpoint"
            )
            self.checkpoints.announce(Path(event["path"]), kind=holds, note=note)
        elif kind == "train_done":
            self._interrupted = self._interrupted or event["interrupted"]
        elif kind == "error":
            self._error = event["message"]
        if kind != "train_step":
            style = {"error": "bold red", "checkpoint": "green", "train_done": "bold green"}.get(kind, "")
            self._log(Text(display_line(event_summary(event)), style=style))
        self._show_status()

    @on(JobEnded)
    def _on_job_ended(self, message: JobEnded) -> None:
        if message.code is None:
            self.exit_code = -1
            self._notice(message.error or "the job could not start", "bold red")
        else:
            self.exit_code = message.code
            self.resumable = message.code == ExitCode.INTERRUPTED or self._interrupted
            line = ending_line(message.code, self._error, self._stderr_tail, self._interrupted)
            style = "bold green" if message.code == ExitCode.OK else "bold yellow" if self.resumable else "bold red"
            self._notice(f"job {display_line(line)}", style)
            self._log(Text(f"job {display_line(line)}", style=style))
        self.form.set_running(False, resumable=self.resumable)
        self._show_status()
        if self.request is not None:
            self.checkpoints.show_output_dir(self.request.out)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Show a worker's failure as one escaped line; the pane stays usable."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            reason = one_line(event.worker.error, unexpected=True)
            if event.worker.group == "train-job":
                self.post_message(self.JobEnded(None, f"the job's reader failed: {reason}"))
            else:
                self.notify(reason, title="Error", severity="error", markup=False)

    # -- the form's own keys ---------------------------------------------------------------

    @on(Button.Pressed, "#train-start")
    def _on_start_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_start()

    @on(Button.Pressed, "#train-cancel")
    def _on_cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()

    @on(Button.Pressed, "#train-resume")
    def _on_resume_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_resume()

    @on(Input.Submitted, "#train-form Input")
    def _on_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    # -- status ----------------------------------------------------------------------------

    def _notice(self, text: str, style: str) -> None:
        self._notice_text = Text(text, style=style)
        self.query_one("#train-notice", Static).update(self._notice_text)

    def _show_status(self) -> None:
        p = self.progress
        parts = [p.stage or "no stage yet"]
        if p.max_steps:
            parts.append(f"step {p.step:,}/{p.max_steps:,}")
        if p.loss is not None:
            parts.append(f"loss {p.loss:.4f}")
        if p.tokens_per_s is not None:
            parts.append(f"{p.tokens_per_s:,.0f} tok/s")
        if p.eta_s is not None and self.running:
            parts.append(f"ETA {_duration(p.eta_s)}")
        if p.perplexity is not None:
            parts.append(f"ppl {p.perplexity:,.2f}")
        parts.append("running" if self.running else "idle")
        self._status_text = Text(" · ".join(parts), style="bold" if self.running else "")
        self.query_one("#train-status", Static).update(self._status_text)


def _duration(seconds: float) -> str:
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
