"""The Files pane's duplicates view: groups of files with the same content in the whole workspace.

The search (:func:`engine.files.tools.duplicates`) runs in a thread worker that reports how far it
got; closing the screen stops it at its next report. The screen changes nothing itself: it
dismisses with what the user chose (mark the older copies, or go to a file) and the pane does it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from engine.files.tools import duplicates
from engine.names import display_name
from engine.workspace.sandbox import SandboxError, Workspace
from tui.error_line import one_line
from tui.sizes import size_text

#: At most this many rows (group headers and files) are listed; the rest are counted.
MAX_ROWS = 500
#: At most this many groups are asked of the engine (the largest waste first).
GROUP_LIMIT = 100_000


@dataclass(frozen=True)
class DuplicateFile:
    """One copy: its workspace-relative path and its modification time (seconds since the epoch)."""

    path: str
    mtime: float


@dataclass(frozen=True)
class DuplicateGroup:
    """Files of ``size`` bytes with the same content, newest first."""

    size: int
    files: tuple[DuplicateFile, ...]

    @property
    def wasted(self) -> int:
        return self.size * (len(self.files) - 1)


@dataclass(frozen=True)
class MarkDuplicates:
    """Mark ``paths``: every copy but the newest of each group."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class RevealFile:
    """Show the directory of ``path`` with it under the cursor."""

    path: str


DuplicatesAnswer = MarkDuplicates | RevealFile


class _Stopped(Exception):
    """Raised in the search's thread, from its progress report, once the screen is closed."""


class DuplicatesScreen(ModalScreen[DuplicatesAnswer | None]):
    """Finds and lists the duplicate files of the workspace at ``root``."""

    CSS_PATH = "duplicates_screen.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", "mark", "Mark older", id="duplicates.mark",
                tooltip="Mark every copy but the newest in each group (then d moves them to the trash)"),
        Binding("escape", "close", "Close", id="duplicates.close", tooltip="Close (stops a search under way)"),
    ]  # fmt: skip

    @dataclass
    class Progress(Message):
        count: int

    @dataclass
    class Found(Message):
        groups: list[DuplicateGroup]
        wasted: int
        truncated: bool

    @dataclass
    class Failed(Message):
        reason: str  # one line, already escaped

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.groups: list[DuplicateGroup] | None = None
        self._stop = threading.Event()
        self._rows: list[DuplicateFile | None] = []  # by option index; None for a line that is not a file

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="duplicates-dialog") as dialog:
            dialog.border_title = "Duplicate files"
            yield Static("looking for duplicates…", id="duplicates-status", markup=False)
            yield OptionList(id="duplicates-list")
            yield Label("Enter: go to the file · k: mark all but the newest · Esc: close", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self._find()

    def on_unmount(self) -> None:
        self._stop.set()

    @work(thread=True, exclusive=True, group="duplicates", exit_on_error=False)
    def _find(self) -> None:
        stop = self._stop

        def progress(count: int) -> None:
            if stop.is_set():
                raise _Stopped
            self.post_message(self.Progress(count))

        try:
            with Workspace(self.root) as ws:
                result = duplicates(ws, ".", limit=GROUP_LIMIT, progress=progress)
        except _Stopped:
            return
        except SandboxError as exc:
            self.post_message(self.Failed(display_name(str(exc))))
            return
        except Exception as exc:
            # A bug or an unreadable workspace costs this view, never the app.
            self.post_message(self.Failed(one_line(exc, unexpected=True)))
            return
        if not stop.is_set():
            self.post_message(self.Found(_groups(result), int(result["wasted"]), bool(result["truncated"])))

    @on(Progress)
    def _on_progress(self, message: Progress) -> None:
        if self.groups is None:
            self._status(f"looking for duplicates… {message.count:,} files checked")

    @on(Failed)
    def _on_failed(self, message: Failed) -> None:
        self._status(f"Cannot look for duplicates: {message.reason}")

    @on(Found)
    def _on_found(self, message: Found) -> None:
        self.groups = message.groups
        if not message.groups:
            self._status("No duplicate files")
            return
        count = len(message.groups)
        summary = f"{count:,} group{'s' * (count != 1)} of duplicates, {size_text(message.wasted)} wasted"
        if message.truncated:
            summary += " (the search stopped at its limit: there may be more)"
        self._status(summary)
        options, self._rows = _options(message.groups)
        listing = self.query_one(OptionList)
        listing.clear_options()
        listing.add_options(options)
        listing.highlighted = 1

    def _status(self, text: str) -> None:
        self.query_one("#duplicates-status", Static).update(text)

    @on(OptionList.OptionSelected)
    def _on_selected(self, event: OptionList.OptionSelected) -> None:
        row = self._rows[event.option_index]
        if row is not None:
            self.dismiss(RevealFile(row.path))

    def action_mark(self) -> None:
        if self.groups is None:
            self.notify("Still looking for duplicates", severity="warning")
            return
        paths = tuple(file.path for group in self.groups for file in group.files[1:])
        if not paths:
            self.notify("No duplicate files")
            return
        self.dismiss(MarkDuplicates(paths))

    def action_close(self) -> None:
        self._stop.set()
        self.dismiss(None)


def _groups(result: dict[str, Any]) -> list[DuplicateGroup]:
    """The engine's JSON-ready groups as typed values."""
    return [
        DuplicateGroup(
            int(group["size"]),
            tuple(DuplicateFile(str(file["path"]), float(file["mtime"])) for file in group["files"]),
        )
        for group in result["groups"]
    ]


def _options(groups: list[DuplicateGroup]) -> tuple[list[Option], list[DuplicateFile | None]]:
    """At most :data:`MAX_ROWS` rows for ``groups`` and, by row, the file each one is (None for a header)."""
    options: list[Option] = []
    rows: list[DuplicateFile | None] = []
    left_out = 0
    for group in groups:
        room = MAX_ROWS - len(options) - 1
        if room <= 0:
            left_out += len(group.files)
            continue
        count = len(group.files)
        header = Text(f"{count} files of {size_text(group.size)}, {size_text(group.wasted)} wasted", style="bold")
        options.append(Option(header, disabled=True))
        rows.append(None)
        for file in group.files[:room]:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(file.mtime))
            # A Text, never markup: a name is shown exactly as display_name escapes it.
            options.append(Option(Text(f"  {when}  {display_name(file.path)}")))
            rows.append(file)
        left_out += max(0, count - room)
    if left_out:
        options.append(Option(Text(f"and {left_out:,} more files", style="italic"), disabled=True))
        rows.append(None)
    return options, rows
