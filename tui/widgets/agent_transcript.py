"""The Agent pane's transcript: one readable line per event, and each role's streamed text.

Streamed text arrives in many small deltas; they are gathered and written at most every
``FLUSH_S`` seconds (and at the end of the role), so a fast model cannot flood the UI. The line
still being streamed shows below the log until it is complete. Every string that came from a
model, a file or a command goes through :class:`rich.text.Text` and ``display_name``: markup and
terminal escapes in it are shown literally.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import RichLog, Static

from engine.names import display_name

FLUSH_S = 0.05
MAX_LINES = 5000
TEST_TAIL_LINES = 15
HINT = (
    "Type a task below and press Enter. The router picks the roles; each role's reply streams in here, "
    "and with approval 'ask' every plan waits for you as a diff."
)


def _safe(value: Any) -> str:
    return display_name(str(value))


def _streamed(text: str) -> str:
    """A model's text with control characters escaped; its backslashes (JSON escapes) left alone."""
    return "".join(ch if ch.isprintable() else display_name(ch) for ch in text.expandtabs(4))


class AgentTranscript(Vertical):
    """A scrolling log of agent events with a live line for the text being streamed."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._pending: list[str] = []
        self._partial = ""
        self._flush_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield RichLog(id="agent-log", wrap=True, markup=False, highlight=False, max_lines=MAX_LINES, min_width=20)
        yield Static("", id="agent-stream", markup=False)

    def on_mount(self) -> None:
        self.query_one("#agent-stream", Static).display = False
        self.clear()

    @property
    def log_widget(self) -> RichLog:
        return self.query_one("#agent-log", RichLog)

    def clear(self) -> None:
        """Empty the transcript and show how to start."""
        self._pending.clear()
        self._partial = ""
        self._show_partial()
        self.log_widget.clear()
        self.line(HINT, "dim")

    def line(self, text: str | Text, style: str = "") -> None:
        """Write one line (after whatever text is still being streamed)."""
        self.flush(complete=True)
        self._write(text if isinstance(text, Text) else Text(text, style=style))

    def _write(self, text: Text) -> None:
        log = self.log_widget
        # Wrap at the log's own width: unsized, a write would wrap at the console's width.
        width = log.scrollable_content_region.width
        log.write(text, width=width if width > 0 else None)

    def begin_task(self, task: str) -> None:
        """Start a new task's section."""
        self.line("")
        self.line(Text("» " + _safe(task), style="bold"))

    def error(self, message: str) -> None:
        """Show an error as one red line."""
        self.line(Text("error: " + _safe(message), style="bold red"))

    # -- streamed text -------------------------------------------------------------------

    def stream(self, text: str) -> None:
        """Take one delta of streamed text; it is written within ``FLUSH_S`` seconds."""
        self._pending.append(text)
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(FLUSH_S, self.flush)

    def flush(self, complete: bool = False) -> None:
        """Write the streamed lines that are complete; with ``complete``, the unfinished one too."""
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        if not self._pending and not (complete and self._partial):
            return
        lines = (self._partial + "".join(self._pending)).split("\n")
        self._pending.clear()
        self._partial = lines.pop()
        if complete and self._partial:
            lines.append(self._partial)
            self._partial = ""
        for piece in lines:
            self._write(Text("  " + _streamed(piece), style="dim"))
        self._show_partial()

    def _show_partial(self) -> None:
        live = self.query_one("#agent-stream", Static)
        live.display = bool(self._partial)
        if self._partial:
            room = max(10, live.size.width - 2)
            live.update(Text("  " + _streamed(self._partial)[-room:], style="dim", no_wrap=True))

    # -- events --------------------------------------------------------------------------

    def handle(self, event: dict[str, Any]) -> None:
        """Show one session event (the dicts ``routeshell run --json`` prints)."""
        kind = event.get("type")
        if kind == "delta":
            self.stream(str(event.get("text", "")))
            return
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(event)

    def _on_route(self, event: dict[str, Any]) -> None:
        roles = " → ".join(_safe(role) for role in event["roles"])
        self.line(Text(f"  route {_safe(event['topology'])}: {roles}", style="bold"))
        if event.get("reason"):
            self.line(Text("  why: " + _safe(event["reason"]), style="dim"))

    def _on_role_start(self, event: dict[str, Any]) -> None:
        self.line(Text(f"▸ {_safe(event['role'])} (round {event['round']})", style="bold cyan"))

    def _on_repair(self, event: dict[str, Any]) -> None:
        first = _safe(event["problems"][0]) if event.get("problems") else "invalid"
        self.line(Text(f"  reply {event['attempt']} rejected ({first}); asking again", style="yellow"))

    def _on_role_end(self, event: dict[str, Any]) -> None:
        self.line(Text(f"  {_safe(event['role'])} done in {event['seconds']:.1f}s, {event['tokens']} tokens", "dim"))

    def _on_plan(self, event: dict[str, Any]) -> None:
        plan = event["plan"]
        count = len(plan["steps"])
        goal = f": {_safe(plan['goal'])}" if plan.get("goal") else ""
        steps = f"{count} step{'s' * (count != 1)}"
        self.line(f"  plan {_safe(event['id'])} from the {_safe(event['role'])}, {steps}{goal}")

    def _on_approval(self, event: dict[str, Any]) -> None:
        self.line(Text(f"  plan {_safe(event['id'])} waits for your approval:", style="bold magenta"))
        for preview in event.get("preview", []):
            mark = "!" if preview.get("problem") else "-"
            self.line(f"    {mark} [{preview['index'] + 1}] {_safe(preview['summary'])}")

    def _on_step(self, event: dict[str, Any]) -> None:
        if event["op"] == "run":
            status = "timed out" if event.get("timed_out") else f"exit {event.get('exit_code')}"
            self.line(Text(f"  ran step {event['index'] + 1}: {status}", style="dim"))

    def _on_applied(self, event: dict[str, Any]) -> None:
        again = " (already applied before the restart; not applied again)" if event.get("replayed") else ""
        steps = f"{event['steps']} step{'s' * (event['steps'] != 1)}"
        self.line(Text(f"  applied {steps} as journal {_safe(event['journal'])}{again}", "green"))

    def _on_test(self, event: dict[str, Any]) -> None:
        if event["passed"]:
            self.line(Text(f"  tests pass (exit {event['exit_code']})", style="bold green"))
            return
        status = "timed out" if event["timed_out"] else f"exit {event['exit_code']}"
        self.line(Text(f"  tests fail ({status}):", style="bold red"))
        for tail_line in str(event.get("tail", "")).rstrip().splitlines()[-TEST_TAIL_LINES:]:
            self.line(Text("    " + _safe(tail_line), style="dim"))

    def _on_reviewed(self, event: dict[str, Any]) -> None:
        if event["status"] != "applied":
            style = "red" if event["status"] in ("rejected", "failed", "reverted") else "dim"
            self.line(Text(f"  plan {_safe(event['id'])} {_safe(event['status'])}: {_safe(event['summary'])}", style))

    def _on_error(self, event: dict[str, Any]) -> None:
        self.error(str(event["message"]))

    def _on_final(self, event: dict[str, Any]) -> None:
        ok = bool(event["ok"])
        self.line(Text(("done: " if ok else "failed: ") + _safe(event["summary"]), "bold green" if ok else "bold red"))
        usage = event.get("usage") or {}
        estimated = " (estimated)" if usage.get("estimated") else ""
        self.line(Text(f"  tokens {usage.get('total_tokens', 0)}{estimated} · thread {_safe(event['thread'])}", "dim"))
        if event.get("undo"):
            journal = _safe(event["undo"])
            self.line(Text(f"  undo: u in the Files pane, or routeshell plan undo (journal {journal})", "dim"))
