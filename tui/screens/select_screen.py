"""Select by pattern: a glob and filters (a ``match`` object), with a live count of what they select."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static
from textual.worker import get_current_worker

from engine.errors import RouteshellError
from engine.files.match import MatchError, select
from engine.names import display_line
from engine.workspace.sandbox import Workspace
from tui.error_line import one_line
from tui.screens.plan_preview import DEBOUNCE_S, SELECTION_DIALOGS_CSS, plural

DEFAULT_GLOB = "**/*"
#: Enter marks at most this many entries; the count stops saying how many past it.
MARK_BOUND = 10_000

#: The filters of a match object: its key, the label of its field, and the field's placeholder.
FILTERS: tuple[tuple[str, str, str], ...] = (
    ("exclude", "exclude", "build/**, *.tmp"),
    ("type", "type", "file, dir or any"),
    ("ext", "ext", ".png, .jpg"),
    ("name_regex", "name regex", r"^report-\d+"),
    ("contains", "contains", "text in the file"),
    ("tag", "tag", "draft"),
    ("larger_than", "larger than", "1MB"),
    ("smaller_than", "smaller than", "2GB"),
    ("modified_after", "modified after", "2025-01-31 or 30d"),
    ("modified_before", "modified before", "2025-01-31 or 30d"),
)
LABELS = {"glob": "glob", **{key: label for key, label, _ in FILTERS}}
_LISTS = ("exclude", "ext")
_VERBATIM = ("name_regex", "contains")  # spaces at either end are part of what is looked for
_NOUNS = {"file": ("file", "files"), "dir": ("directory", "directories")}


def match_spec(values: Mapping[str, str]) -> dict[str, Any]:
    """Return the match object the fields describe: the glob (``**/*`` when empty) and each filter filled in.

    ``exclude`` and ``ext`` are comma-separated lists. The object is checked when it is used.
    """
    spec: dict[str, Any] = {"glob": values.get("glob", "").strip() or DEFAULT_GLOB}
    for key, _label, _placeholder in FILTERS:
        value = values.get(key, "")
        if not value.strip():
            continue
        if key in _LISTS:
            spec[key] = [item.strip() for item in value.split(",") if item.strip()]
        else:
            spec[key] = value if key in _VERBATIM else value.strip()
    return spec


@dataclass(frozen=True)
class Counted:
    """What a match object selects: the paths to mark, or None with the line saying why there are none to mark."""

    paths: list[str] | None
    line: str  # escaped
    problem: bool = False


class _Superseded(Exception):
    """Raised inside a walk to stop it: the fields changed, so its count is no longer wanted."""


def count_matches(root: Path, spec: Mapping[str, Any], cancelled: Callable[[], bool] = lambda: False) -> Counted:
    """Select ``spec`` in the workspace at ``root`` (up to :data:`MARK_BOUND` entries) and say how many match.

    ``cancelled`` is polled as the walk goes; when it returns True the walk stops with :class:`_Superseded`.
    """

    def progress(_walked: int) -> None:
        if cancelled():
            raise _Superseded

    try:
        with Workspace(root) as ws:
            selection = select(ws, spec, bound=MARK_BOUND, progress=progress)
    except MatchError as exc:
        return Counted(None, display_line(f"{LABELS.get(exc.key, exc.key)}: {exc.reason}"), problem=True)
    except (RouteshellError, OSError) as exc:
        return Counted(None, one_line(exc), problem=True)
    if selection.total > MARK_BOUND:
        return Counted(None, f"more than {MARK_BOUND:,} match; narrow the pattern to mark them")
    noun, nouns = _NOUNS.get(str(spec.get("type", "file")), ("entry", "entries"))
    count = len(selection.found)
    return Counted(
        [found.path for found in selection.found], f"{plural(count, noun, nouns)} match{'es' * (count == 1)}"
    )


class SelectScreen(ModalScreen[list[str] | None]):
    """Type a glob and filters; dismiss with the paths they select on Enter, or None on Escape."""

    CSS_PATH = SELECTION_DIALOGS_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="select.cancel", tooltip="Close without marking anything"),
    ]

    @dataclass
    class Ready(Message):
        generation: int
        counted: Counted

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self._generation = 0
        #: The count of what the fields say now; None while it is being worked out.
        self.counted: Counted | None = None
        self._mark_when_ready = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog select-dialog"):
            yield Label("Mark the entries that match", markup=False)
            with Grid(id="select-fields"):
                yield Label("glob", markup=False)
                yield Input(DEFAULT_GLOB, id="select-glob", compact=True)
                for key, label, placeholder in FILTERS:
                    yield Label(label, markup=False)
                    yield Input(placeholder=placeholder, id=f"select-{key}", compact=True)
            yield Static("", id="select-count", markup=False)
            yield Label("Enter marks them · Tab moves between fields · Esc cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#select-glob", Input).focus()
        self._recount()

    def values(self) -> dict[str, str]:
        """The text of each field, by the match key it fills."""
        return {str(field.id).removeprefix("select-"): field.value for field in self.query(Input)}

    @on(Input.Changed)
    def _recount(self) -> None:
        self._generation += 1
        self.counted = None
        self.query_one("#select-count", Static).update(Text("counting …", style="italic"))
        self._count(self._generation, match_spec(self.values()))

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _count(self, generation: int, spec: dict[str, Any]) -> None:
        worker = get_current_worker()
        time.sleep(DEBOUNCE_S)
        if worker.is_cancelled:
            return
        try:
            counted = count_matches(self.root, spec, lambda: worker.is_cancelled)
        except _Superseded:
            return
        except Exception as exc:
            # A bug in the walk costs this count, never the dialog or the app.
            counted = Counted(None, one_line(exc, unexpected=True), problem=True)
        if not worker.is_cancelled:
            self.post_message(self.Ready(generation, counted))

    @on(Ready)
    def _on_ready(self, message: Ready) -> None:
        if message.generation != self._generation:
            return
        self.counted = message.counted
        line = self.query_one("#select-count", Static)
        line.set_class(message.counted.problem, "-problem")
        line.update(Text(message.counted.line, style="bold"))
        if self._mark_when_ready:
            self._mark_when_ready = False
            self.action_mark()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_mark()

    def action_mark(self) -> None:
        """Dismiss with the selected paths; wait for the count first, and refuse when there are none to mark."""
        if self.counted is None:
            self._mark_when_ready = True
        elif self.counted.paths is None:
            self.app.bell()
        else:
            self.dismiss(self.counted.paths)

    def action_cancel(self) -> None:
        self.dismiss(None)
