"""The Files pane's sizes view: the directories under the one shown, largest first.

The sizes come from :func:`engine.files.tools.disk_usage`, run in a thread worker. The screen
dismisses with the directory the user chose, and the pane opens it.
"""

from __future__ import annotations

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
from textual.worker import get_current_worker

from engine.files.tools import disk_usage
from engine.names import display_name
from engine.workspace.sandbox import SandboxError, Workspace
from tui.error_line import one_line
from tui.sizes import size_text

#: At most this many directories are listed; the rest are counted.
MAX_ROWS = 500
#: At most this many directories are asked of the engine (the largest first).
DIR_LIMIT = 100_000
#: How many levels below the directory shown can be listed.
MAX_DEPTH = 4
#: The unreadable directories named on their one line; the rest are counted.
UNREADABLE_NAMED = 10
#: The width of the size bar, in cells.
BAR_WIDTH = 20
_EIGHTHS = " ▏▎▍▌▋▊▉"
_TRACK = "░"


@dataclass(frozen=True)
class DirectorySize:
    """A directory (workspace-relative), the bytes beneath it and how many entries that are not directories."""

    path: str
    size: int
    files: int


@dataclass(frozen=True)
class Usage:
    """What :func:`disk_usage` found under ``path``, typed."""

    path: str
    depth: int
    total: int
    files: int
    dirs: list[DirectorySize]
    unreadable: list[str]
    truncated: bool


class SizesScreen(ModalScreen[str | None]):
    """Lists the sizes of the directories under ``directory`` of the workspace at ``root``."""

    CSS_PATH = "sizes_screen.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("plus,equals_sign", "depth(1)", "Deeper", key_display="+", id="sizes.deeper",
                tooltip=f"List one more level of directories (at most {MAX_DEPTH})"),
        Binding("minus", "depth(-1)", "Shallower", key_display="-", id="sizes.shallower",
                tooltip="List one level of directories less"),
        Binding("escape", "close", "Close", id="sizes.close", tooltip="Close the sizes view"),
    ]  # fmt: skip

    @dataclass
    class Measured(Message):
        usage: Usage

    @dataclass
    class Failed(Message):
        depth: int
        reason: str  # one line, already escaped

    def __init__(self, root: Path, directory: str = ".", *, depth: int = 1) -> None:
        super().__init__()
        self.root = root
        self.directory = directory
        self.depth = max(1, min(depth, MAX_DEPTH))
        self.usage: Usage | None = None
        self._rows: list[str | None] = []  # by option index: the directory, or None for a line that is not one

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="sizes-dialog") as dialog:
            dialog.border_title = "Sizes"
            yield Static("", id="sizes-status", markup=False)
            yield OptionList(id="sizes-list")
            yield Static("", id="sizes-total", markup=False)
            yield Label("Enter: open the directory · + and -: depth · Esc: close", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self._measure_now()

    def _measure_now(self) -> None:
        self.usage = None
        where = "the workspace" if self.directory == "." else display_name(self.directory)
        self._status(f"measuring {where} (depth {self.depth})…")
        self.query_one(OptionList).clear_options()
        self.query_one("#sizes-total", Static).update("")
        self._rows = []
        self._measure(self.depth)

    @work(thread=True, exclusive=True, group="sizes", exit_on_error=False)
    def _measure(self, depth: int) -> None:
        worker = get_current_worker()
        try:
            with Workspace(self.root) as ws:
                result = disk_usage(ws, self.directory, depth=depth, limit=DIR_LIMIT)
        except SandboxError as exc:
            self.post_message(self.Failed(depth, display_name(str(exc))))
            return
        except Exception as exc:
            # A bug or an unreadable workspace costs this view, never the app.
            self.post_message(self.Failed(depth, one_line(exc, unexpected=True)))
            return
        if not worker.is_cancelled:
            self.post_message(self.Measured(_usage(result, depth)))

    @on(Failed)
    def _on_failed(self, message: Failed) -> None:
        if message.depth == self.depth:
            self._status(f"Cannot measure {display_name(self.directory)}: {message.reason}")

    @on(Measured)
    def _on_measured(self, message: Measured) -> None:
        usage = message.usage
        if usage.depth != self.depth:
            return  # a depth the user has already moved away from
        self.usage = usage
        count = len(usage.dirs)
        where = "the workspace" if usage.path == "." else display_name(usage.path)
        status = f"{count:,} director{'y' if count == 1 else 'ies'} in {where}, depth {usage.depth}, largest first"
        if usage.truncated:
            status += f" (the {count:,} largest: the rest were left out)"
        self._status(status if count else f"No directories in {where}")
        options, self._rows = _options(usage)
        listing = self.query_one(OptionList)
        listing.clear_options()
        listing.add_options(options)
        if count:
            listing.highlighted = 0
        total = f"total {size_text(usage.total)} in {usage.files:,} file{'s' * (usage.files != 1)}"
        self.query_one("#sizes-total", Static).update(Text(total, style="bold"))

    def _status(self, text: str) -> None:
        self.query_one("#sizes-status", Static).update(text)

    @on(OptionList.OptionSelected)
    def _on_selected(self, event: OptionList.OptionSelected) -> None:
        row = self._rows[event.option_index]
        if row is not None:
            self.dismiss(row)

    def action_depth(self, delta: int) -> None:
        depth = max(1, min(self.depth + delta, MAX_DEPTH))
        if depth == self.depth:
            self.app.bell()
            return
        self.depth = depth
        self._measure_now()

    def action_close(self) -> None:
        self.dismiss(None)


def _usage(result: dict[str, Any], depth: int) -> Usage:
    """The engine's JSON-ready result as a typed value."""
    return Usage(
        path=str(result["path"]),
        depth=depth,
        total=int(result["total"]),
        files=int(result["files"]),
        dirs=[DirectorySize(str(row["path"]), int(row["size"]), int(row["files"])) for row in result["dirs"]],
        unreadable=[str(path) for path in result["unreadable"]],
        truncated=bool(result["truncated"]),
    )


def size_bar(size: int, total: int, width: int = BAR_WIDTH) -> str:
    """The filled part of a bar ``width`` cells long for ``size`` of ``total``, in eighths of a cell."""
    eighths = round(size / total * width * 8) if total > 0 else 0
    full, part = divmod(min(eighths, width * 8), 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def _options(usage: Usage) -> tuple[list[Option], list[str | None]]:
    """At most :data:`MAX_ROWS` rows for ``usage`` and, by row, the directory each one is."""
    options: list[Option] = []
    rows: list[str | None] = []
    prefix = "" if usage.path == "." else usage.path + "/"
    for row in usage.dirs[:MAX_ROWS]:
        shown = display_name(row.path.removeprefix(prefix)) + "/"
        bar = size_bar(row.size, usage.total)
        track = _TRACK * (BAR_WIDTH - len(bar))
        files = f"{row.files:>9,} file{'s' if row.files != 1 else ' '}"
        # A Text, never markup: a name is shown exactly as display_name escapes it.
        line = Text.assemble(bar, (track, "dim"), f" {size_text(row.size):>9} {files}  {shown}")
        options.append(Option(line))
        rows.append(row.path)
    left_out = len(usage.dirs) - MAX_ROWS
    if left_out > 0:
        options.append(Option(Text(f"and {left_out:,} more", style="italic"), disabled=True))
        rows.append(None)
    if usage.unreadable:
        names = ", ".join(display_name(path) + "/" for path in usage.unreadable[:UNREADABLE_NAMED])
        if len(usage.unreadable) > UNREADABLE_NAMED:
            names += f" and {len(usage.unreadable) - UNREADABLE_NAMED:,} more"
        options.append(Option(Text(f"cannot read (counted as 0): {names}", style="italic"), disabled=True))
        rows.append(None)
    return options, rows
