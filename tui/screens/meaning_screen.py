"""Find by meaning: describe the files wanted, and the ones closest in meaning to it are marked.

The search is a ``semantic`` match over the whole workspace (:mod:`engine.semantic`), run in a
thread worker that reports how far it got: reading the workspace, loading the embedding model (the
first time in the app: seconds), embedding the files that are new or changed since the last search.
Closing the screen stops it at its next report. The screen changes nothing in the workspace: it
dismisses with the files found, best first, and the pane marks them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, ProgressBar, Static

from engine.errors import RouteshellError
from engine.files.match import DEFAULT_TOP_K, MAX_TOP_K, MatchError, select
from engine.names import display_line
from engine.workspace.sandbox import Workspace
from tui.error_line import one_line

_STAGES = {
    "loading": "loading the embedding model (the first search takes a few seconds) …",
    "embedding": "embedding new and changed files: {done:,} of {total:,} …",
}


@dataclass(frozen=True)
class FoundByMeaning:
    """What a search found: each file's path and score, best first, and the warnings met (not escaped)."""

    ranked: list[tuple[str, float]]
    warnings: list[str] = field(default_factory=list)


class _Stopped(Exception):
    """Raised in the search's thread, from its progress report, once the screen is closed."""


def top_k_problem(text: str) -> str | None:
    """Why ``text`` is not a count of files to keep (1 to 1000), or None when it is one."""
    value = text.strip()
    if value.isdecimal() and 1 <= int(value) <= MAX_TOP_K:
        return None
    return f"keep: give a whole number from 1 to {MAX_TOP_K}"


class MeaningScreen(ModalScreen[FoundByMeaning | None]):
    """Ask for a description; search in a worker; dismiss with what was found, or None on Escape."""

    CSS_PATH = "meaning_screen.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="meaning.cancel", tooltip="Close (stops a search under way)"),
    ]

    @dataclass
    class Progress(Message):
        line: str  # escaped
        done: int = 0
        total: int = 0

    @dataclass
    class Found(Message):
        found: FoundByMeaning

    @dataclass
    class Failed(Message):
        reason: str  # one line, already escaped

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.searching = False
        self._stop = threading.Event()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="meaning-dialog") as dialog:
            dialog.border_title = "Find by meaning"
            yield Label("Mark the files whose names and first lines are closest in meaning to", markup=False)
            yield Input(placeholder="tax documents, holiday photos, meeting notes …", id="meaning-query")
            with Horizontal(id="meaning-options"):
                yield Label("keep the best", markup=False)
                yield Input(str(DEFAULT_TOP_K), id="meaning-top-k", compact=True, restrict=r"\d*", max_length=4)
            yield ProgressBar(id="meaning-progress", show_eta=False)
            yield Static("", id="meaning-status", markup=False)
            yield Label("Enter finds and marks them · Tab moves between fields · Esc cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#meaning-progress", ProgressBar).display = False
        self.query_one("#meaning-query", Input).focus()

    def on_unmount(self) -> None:
        self._stop.set()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_find()

    def action_find(self) -> None:
        """Start the search the fields describe (a search under way goes on; a bad field says why)."""
        if self.searching:
            return
        query = self.query_one("#meaning-query", Input).value
        top_k = self.query_one("#meaning-top-k", Input).value
        problem = "describe the files to find" if not query.strip() else top_k_problem(top_k)
        if problem is not None:
            self._status(problem, problem=True)
            self.app.bell()
            return
        self.searching = True
        self._status("reading the workspace …")
        self._search(query, int(top_k))

    @work(thread=True, exclusive=True, group="meaning", exit_on_error=False)
    def _search(self, query: str, top_k: int) -> None:
        stop = self._stop

        def walked(count: int) -> None:
            if stop.is_set():
                raise _Stopped
            self.post_message(self.Progress(f"reading the workspace … {count:,} entries"))

        def ranking(stage: str, done: int, total: int) -> None:
            if stop.is_set():
                raise _Stopped
            self.post_message(self.Progress(_STAGES[stage].format(done=done, total=total), done, total))

        try:
            with Workspace(self.root) as ws:
                spec = {"glob": "**", "semantic": query, "top_k": top_k}
                selection = select(ws, spec, progress=walked, rank_progress=ranking)
        except _Stopped:
            return
        except MatchError as exc:
            self.post_message(self.Failed(display_line(f"{exc.key}: {exc.reason}")))
            return
        except (RouteshellError, OSError) as exc:
            self.post_message(self.Failed(one_line(exc)))
            return
        except Exception as exc:
            # A bug, or a model that breaks while it embeds, costs this search, never the app.
            self.post_message(self.Failed(one_line(exc, unexpected=True)))
            return
        if not stop.is_set():
            self.post_message(self.Found(FoundByMeaning(selection.ranked, selection.warnings)))

    @on(Progress)
    def _on_progress(self, message: Progress) -> None:
        if not self.searching:
            return
        bar = self.query_one("#meaning-progress", ProgressBar)
        bar.display = message.total > 0
        if message.total:
            bar.update(total=message.total, progress=message.done)
        self._status(message.line)

    @on(Failed)
    def _on_failed(self, message: Failed) -> None:
        self._finished()
        self._status(f"Cannot search: {message.reason}", problem=True)

    @on(Found)
    def _on_found(self, message: Found) -> None:
        self._finished()
        if not message.found.ranked:
            self._status("No files to rank: the workspace has no regular files", problem=True)
            return
        self.dismiss(message.found)

    def _finished(self) -> None:
        self.searching = False
        self.query_one("#meaning-progress", ProgressBar).display = False

    def _status(self, line: str, *, problem: bool = False) -> None:
        status = self.query_one("#meaning-status", Static)
        status.set_class(problem, "-problem")
        # A Text, never markup: the line may quote a file name or the description.
        status.update(Text(line, style="bold" if problem else "italic"))

    def action_cancel(self) -> None:
        self._stop.set()
        self.dismiss(None)
