"""The Agent pane: type a task, watch the roles work, answer each plan that waits for approval.

The run is an :class:`agents.session.AgentSession` driven in a thread worker; its events come
back as :class:`AgentPane.AgentEvent` messages (the same dicts ``routeshell run --json`` prints),
so the UI stays responsive while a model is answering. One session serves the pane for its life;
it is opened on the first task, in the worker, because it loads LangGraph.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from engine.config.profiles import Profile
from engine.errors import ExitCode, RouteshellError
from engine.events import ApprovalAnswer
from engine.kinds import APPROVAL_MODES, ApprovalMode
from engine.names import display_line, display_name
from engine.serve.launcher import LocalServer, local_server_for
from tui.screens.approval_screen import ApprovalScreen
from tui.widgets.agent_transcript import AgentTranscript
from tui.widgets.route_decision import RouteDecision
from tui.widgets.task_input import TaskInput, history_path
from tui.widgets.usage_meter import UsageMeter

if TYPE_CHECKING:
    from agents.session import AgentSession, Outcome

#: The approval modes of ``agents.state.APPROVAL_MODES`` (a test keeps them in step), in the order
#: ctrl+t cycles through them. Kept here so the shell starts without loading the agent stack.
APPROVAL_HELP: dict[ApprovalMode, str] = {
    "ask": "every plan waits for you",
    "auto": "plans that only change files are applied; plans with run steps wait",
    "never": "plans are shown, never applied",
    "all": "every plan is applied, run steps included (in the sandbox)",
}
VERBS = {"approve": "approved", "edit": "edited and approved", "reject": "rejected"}


def _approval_mode(name: str) -> ApprovalMode | None:
    """Return the approval mode called ``name``, or None when there is none."""
    return next((mode for mode in APPROVAL_MODES if mode == name), None)


class AgentPane(Vertical):
    """Task line, router decision, transcript and meter over one workspace and profile."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+t", "cycle_approval", "Approval", id="agent.approval",
                tooltip="Switch the approval mode: ask, auto, never, all"),
        Binding("ctrl+o", "review", "Review plan", id="agent.review", tooltip="Reopen the plan waiting for approval"),
        Binding("ctrl+s", "stop", "Stop", id="agent.stop",
                tooltip="Stop the run once the step in progress (a model reply or an apply) is done"),
        Binding("ctrl+r", "resume", "Continue", id="agent.resume",
                tooltip="Continue the last run after a stop or an error, from its last completed step"),
        Binding("ctrl+y", "offer_unsure", "Offer anyway", show=False, id="agent.offer",
                tooltip="Ask again for the plan the local planner was unsure of, and show it for approval"),
        Binding("ctrl+l", "clear", "Clear", show=False, id="agent.clear", tooltip="Clear the transcript"),
        Binding("escape", "leave_input", "Leave", show=False, id="agent.leave",
                tooltip="Leave the task line, so 1-4 switch panes again"),
    ]  # fmt: skip

    approval: reactive[ApprovalMode] = reactive("ask", init=False)

    @dataclass
    class AgentEvent(Message):
        """One event of the running session."""

        event: dict[str, Any]

    @dataclass
    class RunEnded(Message):
        """The worker is done: paused or finished (``outcome``), failed (``error``) or ``stopped``."""

        outcome: Outcome | None
        error: str | None = None
        stopped: bool = False

    def __init__(self, workspace: Path, profile: Profile, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.workspace = workspace
        self.profile = profile
        self.set_reactive(AgentPane.approval, _approval_mode(str(profile.data.get("approval", "ask"))) or "ask")
        self.running = False
        self.waiting: Outcome | None = None
        self.last_thread: str | None = None
        #: The task whose plan the local planner was unsure of (declined), which ctrl+y offers anyway.
        self.unsure_task: str | None = None
        self._asked: str | None = None
        self._session: AgentSession | None = None
        # The profile's own model server (the local profile), started by the first run that needs it.
        self.local_server: LocalServer | None = local_server_for(profile, cwd=workspace)
        # Guards the session between the worker (which opens and uses it) and unmount (which closes it).
        self._session_lock = threading.Lock()
        self._busy = False
        self._closing = False
        # The user asked to stop the current run. The run itself is stopped one way only, by
        # AgentSession.stop(); this flag carries a stop pressed before the session or its run exists.
        self._stop = threading.Event()
        self._error_shown = False
        self._elapsed_before = 0.0
        self._run_started = 0.0

    def compose(self) -> ComposeResult:
        yield Static("", id="agent-header")
        yield RouteDecision(id="agent-decision")
        from tui.cli import command_hint

        undo = command_hint(self.profile, "plan", "undo", "--workspace", str(self.workspace))
        yield AgentTranscript(undo_hint=f"u in the Files pane, or {undo}", id="agent-transcript")
        yield UsageMeter(id="agent-meter")
        yield TaskInput(history_path(), placeholder="a task in plain words; Enter runs it, ↑ recalls", id="agent-input")

    def on_mount(self) -> None:
        self._clock = self.set_interval(1.0, self._tick, pause=True)
        self._show_header()

    def on_unmount(self) -> None:
        # A run still going stops after its step in progress; the worker closes the session when it ends.
        self._request_stop()
        with self._session_lock:
            self._closing = True
            if not self._busy:
                self._close_session()

    @property
    def transcript(self) -> AgentTranscript:
        return self.query_one(AgentTranscript)

    @property
    def meter(self) -> UsageMeter:
        return self.query_one(UsageMeter)

    def focus_input(self) -> None:
        """Put the keyboard focus on the task line."""
        self.query_one(TaskInput).focus()

    # -- approval mode -------------------------------------------------------------------

    def watch_approval(self) -> None:
        self._show_header()

    def _show_header(self) -> None:
        text = Text()
        text.append("approval ", style="bold")
        text.append(self.approval, style="bold magenta")
        text.append(f"  {APPROVAL_HELP[self.approval]}", style="dim")
        text.append("  (ctrl+t to change)", style="dim italic")
        self.query_one("#agent-header", Static).update(text)

    def action_set_approval(self, mode: str) -> None:
        """Switch to approval ``mode``; a run in progress uses it from its next start or answer."""
        chosen = _approval_mode(mode)
        if chosen is None:
            self.notify(f"Unknown approval mode {mode!r}", severity="error", markup=False)
            return
        self.approval = chosen
        later = " (from the next task or answer)" if self.running else ""
        self.notify(f"Approval {chosen}: {APPROVAL_HELP[chosen]}{later}")

    def action_cycle_approval(self) -> None:
        modes = list(APPROVAL_HELP)
        self.action_set_approval(modes[(modes.index(self.approval) + 1) % len(modes)])

    # -- starting and answering ----------------------------------------------------------

    @on(Input.Submitted, "#agent-input")
    def _on_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        task = event.value.strip()
        if not task:
            return
        if self._cannot_start():
            return
        field = self.query_one(TaskInput)
        field.value = ""
        warning = field.remember(task)
        if warning:
            self.notify(warning, severity="warning", markup=False)
        self.start_task(task)

    def _cannot_start(self) -> bool:
        """Whether a new task must wait (a run going, a plan waiting for an answer): says so."""
        if self.running:
            self.notify("A task is running: wait for it, or stop it with ctrl+s", severity="warning")
            return True
        if self.waiting is not None:
            self.notify("A plan waits for your answer: ctrl+o reopens it", severity="warning")
            return True
        return False

    def start_task(self, task: str, *, anyway: bool = False) -> None:
        """Run ``task`` from the start in a worker (the caller checked that nothing is running);
        ``anyway``: offer a plan however unsure of it the local planner is, in the approval dialog."""
        self.query_one(RouteDecision).clear()
        self.meter.tokens = 0
        self.meter.estimated = False
        self._elapsed_before = 0.0
        self._asked, self.unsure_task = task, None
        self.transcript.begin_task(task)
        self._begin_run()
        if anyway:
            self._drive("ask", task, least=0.0)
        else:
            self._drive(self.approval, task)

    def action_offer_unsure(self) -> None:
        """Ask again for the plan the local planner declined as unsure, and show it for approval
        (whatever the approval mode: it is never applied unseen)."""
        if self._cannot_start():
            return
        if self.unsure_task is None:
            self.notify("No plan was declined as unsure: type a task")
            return
        self.start_task(self.unsure_task, anyway=True)

    def action_review(self) -> None:
        """Show the plan waiting for approval again."""
        if self.waiting is None or self.waiting.approval is None:
            self.notify("No plan is waiting for approval")
            return
        if isinstance(self.app.screen, ApprovalScreen):
            return
        self.app.push_screen(ApprovalScreen(self.waiting.approval, self.workspace), self._answered)

    def _answered(self, answer: ApprovalAnswer | None) -> None:
        waiting = self.waiting
        if waiting is None or waiting.approval is None:
            return
        plan_id = display_name(str(waiting.approval["id"]))
        if answer is None:
            self.transcript.line(Text(f"  plan {plan_id} still waits: ctrl+o reopens it", style="magenta"))
            return
        self.waiting = None
        reason = f": {display_name(answer['reason'])}" if answer.get("reason") else ""
        self.transcript.line(Text(f"  you {VERBS.get(answer['action'], answer['action'])} plan {plan_id}{reason}"))
        self._begin_run()
        self._drive(self.approval, None, waiting.thread, answer)

    def action_resume(self) -> None:
        """Continue the last run (stopped, or ended by an error) from its last completed step."""
        if self.running:
            self.notify("A task is running", severity="warning")
            return
        if self.waiting is not None:
            self.action_review()
            return
        if self.last_thread is None:
            self.notify("No run to continue: type a task")
            return
        self.transcript.line(Text(f"  continuing thread {self.last_thread}", style="magenta"))
        self._begin_run()
        self._drive(self.approval, None, self.last_thread, None)

    def action_stop(self) -> None:
        """Ask the run to stop once the step in progress is done."""
        if not self.running:
            self.notify("Nothing is running")
            return
        self._request_stop()
        self.meter.status = "stopping"
        self.transcript.line(Text("  stopping once the step in progress is done …", style="yellow"))

    def _request_stop(self) -> None:
        """Stop the run: at once through the session if its run is going (a streaming reply is cut
        off at its next piece), else when it starts (the worker and :meth:`_forward` pass it on)."""
        self._stop.set()
        session = self._session
        if session is not None:
            session.stop()

    def action_clear(self) -> None:
        self.transcript.clear()

    def action_leave_input(self) -> None:
        if self.query_one(TaskInput).has_focus:
            self.transcript.log_widget.focus()

    # -- the worker ----------------------------------------------------------------------

    def _begin_run(self) -> None:
        self.running = True
        self._error_shown = False
        self._stop.clear()
        self._run_started = time.monotonic()
        self.meter.status = "running"
        self.meter.elapsed = self._elapsed_before
        self._clock.resume()

    @work(thread=True, exclusive=True, group="agent", exit_on_error=False)
    def _drive(
        self,
        approval: ApprovalMode,
        task: str | None,
        thread: str | None = None,
        answer: ApprovalAnswer | None = None,
        *,
        least: float | None = None,
    ) -> None:
        """Start ``task``, or resume ``thread`` with ``answer``; report its end with RunEnded.
        ``least``: the bound of an unsure plan instead of the profile's, for this run."""
        with self._session_lock:
            if self._closing:
                return
            self._busy = True
        ended = self.RunEnded(None)
        try:
            if self.local_server is not None:
                self.local_server.ensure(on_start=self._server_starting)
            session = self._open_session(approval)
            session.options.approval = approval
            session.options.min_plan_probability = least
            if self._stop.is_set():
                # Stopped while the session was being opened: nothing has run, so nothing starts.
                ended.stopped = True
            else:
                ended.outcome = session.start(task) if task is not None else session.resume(str(thread), answer)
        except RouteshellError as exc:
            # The session's own stop (RunStopped) is a stop, not an error.
            if self._stop.is_set() and exc.exit_code == ExitCode.INTERRUPTED:
                ended.stopped = True
            else:
                ended.error = str(exc)
        except Exception as exc:
            # A bug must show as one line and leave the pane usable, not end the shell.
            ended.error = f"unexpected error: {type(exc).__name__}: {exc}"
        finally:
            self._release_session()
        self.post_message(ended)

    def _open_session(self, approval: ApprovalMode) -> AgentSession:
        """Return the pane's session, opening it on first use (in the worker: it loads LangGraph)."""
        if self._session is None:
            from agents.session import AgentSession, SessionOptions

            self._session = AgentSession(self.workspace, self.profile, SessionOptions(approval=approval), self._forward)
        return self._session

    def _release_session(self) -> None:
        """The worker is done with the session: close it if the pane went away meanwhile."""
        with self._session_lock:
            self._busy = False
            if self._closing:
                self._close_session()

    def _close_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        if self.local_server is not None:
            self.local_server.close()

    def _server_starting(self, line: str) -> None:
        """In the worker: say why the first run waits (the local model server loads its model)."""
        self.app.call_from_thread(self.transcript.line, Text(display_line(line) + " …", style="dim"))

    def _forward(self, event: dict[str, Any]) -> None:
        """Session callback, in the worker thread: pass the event on.

        A stop pressed between the check in :meth:`_drive` and the start of the run reached no run;
        the run's first event is the earliest moment the session's own stop can reach it.
        """
        self.post_message(self.AgentEvent(event))
        if self._stop.is_set() and event.get("type") not in ("approval", "final", "error") and self._session:
            self._session.stop()

    # -- events back in the UI -----------------------------------------------------------

    @on(AgentEvent)
    def _on_agent_event(self, message: AgentEvent) -> None:
        event = message.event
        kind = event.get("type")
        if kind == "route":
            self.last_thread = str(event["thread"])
            self.query_one(RouteDecision).show(event)
        elif kind == "usage":
            self.meter.tokens = int(event.get("run_total", 0))
            self.meter.estimated = self.meter.estimated or bool(event.get("estimated"))
        elif kind == "error":
            self._error_shown = True
        self.transcript.handle(event)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that failed outside its own handling: one escaped line, and the pane stays usable."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.transcript.error(f"unexpected error: {type(error).__name__}: {error}")  # escaped there

    @on(RunEnded)
    def _on_run_ended(self, message: RunEnded) -> None:
        self.running = False
        self._stop.clear()
        self._elapsed_before += time.monotonic() - self._run_started
        self.meter.elapsed = self._elapsed_before
        self._clock.pause()
        outcome = message.outcome
        if message.stopped:
            self.transcript.line(
                Text("stopped: nothing after the step in progress ran; ctrl+r continues", style="bold yellow")
            )
            self.meter.status = "stopped"
        elif message.error is not None or outcome is None:
            if not self._error_shown:
                self.transcript.error(message.error or "the run ended without an outcome")
            self.meter.status = "failed"
        elif outcome.status == "paused":
            self.waiting = outcome
            self.meter.status = "waiting for approval"
            self.action_review()
        else:
            self.meter.status = "done" if outcome.final and outcome.final["ok"] else "failed"
            from agents.nodes import UNSURE  # (loaded already: a run has just ended)

            if outcome.final and not outcome.final["ok"] and outcome.final["summary"].startswith(UNSURE):
                self.unsure_task = self._asked
                self.transcript.line(
                    Text("  ctrl+y asks again and shows that plan anyway; it waits for your approval", style="magenta")
                )

    def _tick(self) -> None:
        if self.running:
            self.meter.elapsed = self._elapsed_before + time.monotonic() - self._run_started
