"""The Agent pane's transcript: one readable line per event, and each role's streamed text.

Streamed text arrives in many small deltas; they are gathered and written at most every
``FLUSH_S`` seconds (and at the end of the role), so a fast model cannot flood the UI. The line
still being streamed shows below the log until it is complete. Every string that came from a
model, a file or a command goes through :class:`rich.text.Text` and ``engine.names``: markup and
terminal escapes in it are shown literally. Which lines an event gives is decided in
:func:`tui.transcript.event_lines`, the same for ``routeshell run`` and ``--plain``.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import RichLog, Static

from engine.names import display_name
from tui.transcript import error_line, event_lines, streamed_text

FLUSH_S = 0.05
MAX_LINES = 5000
HINT = (
    "Type a task below and press Enter. The router picks the roles; each role's reply streams in here, "
    "and with approval 'ask' every plan waits for you as a diff."
)


class AgentTranscript(Vertical):
    """A scrolling log of agent events with a live line for the text being streamed."""

    def __init__(self, *, undo_hint: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.undo_hint = undo_hint
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
        self.line(Text("» " + display_name(task), style="bold"))

    def error(self, message: str) -> None:
        """Show an error as one red line."""
        self.line(error_line(message))

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
            self._write(streamed_text("  " + piece))
        self._show_partial()

    def _show_partial(self) -> None:
        live = self.query_one("#agent-stream", Static)
        live.display = bool(self._partial)
        if self._partial:
            room = max(10, live.size.width - 2)
            shown = streamed_text("  " + self._partial)
            live.update(Text(shown.plain[-room:], style="dim", no_wrap=True))

    # -- events --------------------------------------------------------------------------

    def handle(self, event: dict[str, Any]) -> None:
        """Show one session event (the dicts ``routeshell run --json`` prints), as ``run`` shows it."""
        if event.get("type") == "delta":
            self.stream(str(event.get("text", "")))
            return
        for text in event_lines(event, undo_hint=self.undo_hint):
            text.no_wrap = False  # every line wraps at the log's width here, the undo hint too (it names a key)
            self.line(text)
