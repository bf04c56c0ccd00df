"""The Files pane: a keyboard-driven browser of the workspace.

Every read of the workspace (directory scans, metadata, previews, crash recovery) runs in a thread
worker that calls the pure functions of ``engine.workspace.listing`` on a
:class:`~engine.workspace.sandbox.Workspace` and posts typed messages back, so a huge directory or a
slow disk never freezes the UI. Paths are workspace-relative strings (the root is ``"."``), resolved
only by the workspace. A worker that fails shows one escaped line in the pane; the app goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker

from engine.errors import RouteshellError
from engine.files.match import tags_at
from engine.names import display_line, display_name
from engine.plans.apply import recover
from engine.plans.file_plans import join
from engine.plans.policy import Policy
from engine.workspace import listing
from engine.workspace.sandbox import Entry, SandboxError, Workspace
from tui.error_line import error_text, one_line
from tui.widgets.entry_list import EntryList
from tui.widgets.file_meaning import MEANING_BINDINGS, FileMeaningMixin
from tui.widgets.file_operations import BLOCKED_WHILE_APPLYING, OPERATION_BINDINGS, FileOperationsMixin
from tui.widgets.file_preview import Described, FilePreview, MetadataView, highlight
from tui.widgets.file_selection import SELECTION_BINDINGS, SelectionMixin
from tui.widgets.file_tags import TAG_ARCHIVE_BINDINGS, TagArchiveMixin
from tui.widgets.file_views import VIEW_BINDINGS, FileViewsMixin

#: The pane's own actions that open a dialog, blocked while a plan applies as the operations' are.
_BLOCKED_WHILE_APPLYING = BLOCKED_WHILE_APPLYING | {"find_by_meaning"}


class FilesPane(SelectionMixin, FileMeaningMixin, TagArchiveMixin, FileViewsMixin, FileOperationsMixin, Vertical):
    """Browse the workspace: entries on the left, preview and metadata on the right."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "backspace,left,h", "up", "Parent", show=False, id="files.parent", tooltip="Go to the parent directory"
        ),
        Binding("slash", "filter", "Filter", key_display="/", id="files.filter", tooltip="Type to filter entries"),
        Binding(
            "full_stop",
            "toggle_hidden",
            "Hidden",
            show=False,
            key_display=".",
            id="files.hidden",
            tooltip="Show or hide dotfiles",
        ),
        Binding(
            "escape", "clear_filter", "Clear filter", show=False, id="files.clear_filter", tooltip="Clear the filter"
        ),
        Binding("ctrl+r", "reload", "Reload", show=False, id="files.reload", tooltip="Read the directory again"),
        Binding(
            "tilde", "root", "Root", show=False, key_display="~", id="files.root", tooltip="Go to the workspace root"
        ),
        *OPERATION_BINDINGS,
        *SELECTION_BINDINGS,
        *MEANING_BINDINGS,
        *TAG_ARCHIVE_BINDINGS,
        *VIEW_BINDINGS,
    ]

    show_hidden: reactive[bool] = reactive(False, init=False)
    filter_text: reactive[str] = reactive("", init=False)

    @dataclass
    class EntriesLoaded(Message):
        generation: int
        directory: str
        entries: list[Entry]
        select: str | None

    @dataclass
    class ScanProgress(Message):
        generation: int
        count: int

    @dataclass
    class ScanFailed(Message):
        generation: int
        directory: str
        reason: str  # one line, already escaped

    @dataclass
    class PreviewReady(Message):
        path: str
        text: Text
        described: Described

    def __init__(self, root: Path, *, id: str | None = None, policy: Policy | None = None) -> None:
        super().__init__(id=id)
        self.root = root
        #: The profile's [policy]: every plan the pane applies is checked against it.
        self.policy = policy or Policy()
        #: The directory shown, relative to the workspace root ("." is the root).
        self.directory = "."
        self._all: list[Entry] = []
        self._generation = 0
        self._loading = False
        self.marks: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Static("", id="files-path", markup=False)
        with Horizontal(id="files-body"):
            with Vertical(id="files-left"):
                yield EntryList(id="files-entries", empty_text="(no entries)")
                yield Input(placeholder="filter: type to narrow, Enter to keep, Esc to clear", id="files-filter")
            with Vertical(id="files-right"):
                yield FilePreview(id="files-preview")
                yield MetadataView(id="files-meta")
        yield ProgressBar(id="files-progress", show_eta=False)
        yield Static("", id="files-status", markup=False)

    def on_mount(self) -> None:
        self.query_one("#files-filter", Input).display = False
        self.query_one("#files-progress", ProgressBar).display = False
        self._recover()
        self.load(".")

    @work(thread=True, group="recover", exit_on_error=False)
    def _recover(self) -> None:
        """Roll back a plan that a crash left half applied, before anything else changes files."""
        try:
            recovered = recover(self.root)
        except Exception as exc:
            # Whatever went wrong, the pane stays usable for browsing: say it in one line.
            reason = one_line(exc, unexpected=not isinstance(exc, (RouteshellError, OSError)))
            self.app.call_from_thread(self.notify, f"Recovery failed: {reason}", severity="error", markup=False)
            return
        if recovered:
            message = f"Rolled back {len(recovered)} interrupted plan(s): {', '.join(recovered)}"
            self.app.call_from_thread(self.notify, message, severity="warning", markup=False)
            self.app.call_from_thread(self.action_reload)

    @property
    def entry_list(self) -> EntryList:
        return self.query_one("#files-entries", EntryList)

    def focus_entries(self) -> None:
        """Put the keyboard focus on the entry list."""
        self.entry_list.focus()

    # -- loading -------------------------------------------------------------------------

    def load(self, directory: str, *, select: str | None = None) -> None:
        """Start reading the workspace-relative ``directory`` in a worker; the list updates when it is done."""
        self._generation += 1
        self._loading = True
        self._set_status(f"reading {self._relative(directory)} …")
        self._scan(self._generation, directory, select)

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def _scan(self, generation: int, directory: str, select: str | None) -> None:
        worker = get_current_worker()

        def progress(count: int) -> None:
            if not worker.is_cancelled:
                self.post_message(self.ScanProgress(generation, count))

        try:
            with Workspace(self.root) as ws:
                entries = listing.scan_directory(ws, directory, progress=progress)
        except SandboxError as exc:
            self.post_message(self.ScanFailed(generation, directory, display_line(listing.refusal_note(exc))))
            return
        except Exception as exc:
            self.post_message(self.ScanFailed(generation, directory, one_line(exc, unexpected=True)))
            return
        if not worker.is_cancelled:
            self.post_message(self.EntriesLoaded(generation, directory, entries, select))

    @on(ScanProgress)
    def _on_scan_progress(self, message: ScanProgress) -> None:
        if message.generation == self._generation:
            self._set_status(f"reading {self._relative(self.directory)} … {message.count:,} entries")

    @on(EntriesLoaded)
    def _on_entries_loaded(self, message: EntriesLoaded) -> None:
        if message.generation != self._generation:
            return
        self._loading = False
        self.directory = message.directory
        self._all = message.entries
        self.query_one("#files-path", Static).update(Text(self._relative(self.directory), style="bold"))
        self.refresh_tag_filter()
        self._apply_filter(select=message.select)

    @on(ScanFailed)
    def _on_scan_failed(self, message: ScanFailed) -> None:
        if message.generation != self._generation:
            return
        self._loading = False
        where = display_name(self._relative(message.directory))
        self.notify(f"Cannot open {where}: {message.reason}", severity="error", markup=False)
        self._update_status()

    # -- filtering -----------------------------------------------------------------------

    def _apply_filter(self, *, select: str | None = None) -> None:
        current = self.entry_list.highlighted
        keep = select if select is not None else (current.name if current else None)
        visible = self.tag_filtered(
            listing.filter_entries(self._all, text=self.filter_text, show_hidden=self.show_hidden)
        )
        self.entry_list.set_entries(visible, select=keep)
        self.refresh_marks()

    def watch_show_hidden(self) -> None:
        self._apply_filter()

    def watch_filter_text(self) -> None:
        self._apply_filter()

    @on(Input.Changed, "#files-filter")
    def _on_filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#files-filter")
    def _on_filter_submitted(self) -> None:
        self.focus_entries()

    # -- preview -------------------------------------------------------------------------

    @on(EntryList.Highlighted)
    def _on_highlighted(self, event: EntryList.Highlighted) -> None:
        if event.entry is None:
            self.query_one(FilePreview).show("")
            self.query_one(MetadataView).describe(None)
            return
        self._preview(join(self.directory, event.entry.name), event.entry)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _preview(self, path: str, entry: Entry) -> None:
        worker = get_current_worker()
        try:
            with Workspace(self.root) as ws:
                described, text = self._describe(ws, path, entry, lambda: worker.is_cancelled)
        except Exception as exc:
            # One file that cannot be shown (or a bug showing it) costs its preview, never the app.
            reason = error_text(exc, unexpected=not isinstance(exc, SandboxError))
            described = Described(entry.name, None, reason)  # the view escapes it
            text = Text(f"preview failed: {display_line(reason)}", style="italic")
        if not worker.is_cancelled:
            self.post_message(self.PreviewReady(path, text, described))

    @staticmethod
    def _describe(ws: Workspace, path: str, entry: Entry, cancelled: Callable[[], bool]) -> tuple[Described, Text]:
        """Read the metadata and the preview (a count, for a directory) of ``path``. In a worker."""
        try:
            described = Described(entry.name, listing.metadata(ws, path), tags=tuple(tags_at(ws, path)))
        except SandboxError as exc:
            described = Described(entry.name, None, listing.refusal_note(exc))
        if entry.is_dir:
            try:
                text = Text(_count_text(listing.count_entries(ws, path, limit=10_000)), style="italic")
            except SandboxError as exc:
                text = Text(f"directory: {display_line(listing.refusal_note(exc))}", style="italic")
        else:
            preview = listing.read_preview(ws, path)
            # Highlighting is the slow part: skip it when the cursor has already moved on.
            text = Text() if cancelled() else highlight(Path(path), preview)
        return described, text

    @on(PreviewReady)
    def _on_preview_ready(self, message: PreviewReady) -> None:
        current = self.entry_list.highlighted
        if current is None or join(self.directory, current.name) != message.path:
            return
        self.query_one(FilePreview).show(message.text)
        self.query_one(MetadataView).describe(message.described)

    # -- navigation ----------------------------------------------------------------------

    @on(EntryList.Activated)
    def _on_activated(self, event: EntryList.Activated) -> None:
        # is_dir is False for a symlink the workspace does not follow (outside, dangling, or a loop).
        if not event.entry.is_dir:
            self.query_one(FilePreview).focus()
            return
        self._clear_filter_silently()
        self.load(join(self.directory, event.entry.name))

    def action_up(self) -> None:
        if self.query_one(FilePreview).has_focus:
            self.focus_entries()
            return
        if self.directory == ".":
            self.app.bell()
            return
        parent, _, name = self.directory.rpartition("/")
        self._clear_filter_silently()
        self.load(parent or ".", select=name)

    def action_root(self) -> None:
        self._clear_filter_silently()
        self.load(".")

    def action_reload(self) -> None:
        current = self.entry_list.highlighted
        self.load(self.directory, select=current.name if current else None)

    def action_toggle_hidden(self) -> None:
        self.show_hidden = not self.show_hidden

    def action_filter(self) -> None:
        field = self.query_one("#files-filter", Input)
        field.display = True
        field.focus()

    def action_clear_filter(self) -> None:
        if self.action_cancel_apply():
            return
        field = self.query_one("#files-filter", Input)
        if not field.display and not self.filter_text and self.tag_filter is None:
            return
        self._clear_filter_silently()
        self._apply_filter()
        self.focus_entries()

    def _clear_filter_silently(self) -> None:
        field = self.query_one("#files-filter", Input)
        with field.prevent(Input.Changed):
            field.value = ""
        field.display = False
        self.set_reactive(FilesPane.filter_text, "")
        self.clear_tag_filter()

    def refresh_marks(self) -> None:
        """Show which entries of this directory are marked, and the count of all marks."""
        prefix = "" if self.directory == "." else self.directory + "/"
        self.entry_list.marked = {
            p[len(prefix) :] for p in self.marks if p.startswith(prefix) and "/" not in p[len(prefix) :]
        }
        self.entry_list.refresh()
        self._update_status()

    # -- status --------------------------------------------------------------------------

    def _relative(self, directory: str) -> str:
        shown = self.root.name or "/"
        return display_name(shown if directory == "." else f"{shown}/{directory}") + "/"

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Show a worker's failure as one escaped line; the pane stays usable."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.notify(one_line(event.worker.error, unexpected=True), title="Error", severity="error", markup=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a plan applies, the actions that change files or open a dialog wait (Esc cancels the apply)."""
        if self.applying and action in _BLOCKED_WHILE_APPLYING:
            return None  # shown disabled; the key does nothing
        return True

    def notify_busy(self) -> None:
        """Say why an action does nothing now."""
        self.notify("A plan is being applied; wait for it, or press Esc to cancel it", severity="warning")

    def _set_status(self, text: str) -> None:
        self.query_one("#files-status", Static).update(text)

    def _update_status(self) -> None:
        hidden = 0 if self.show_hidden else sum(1 for entry in self._all if entry.name.startswith("."))
        listed = len(self._all) - hidden
        parts = [f"{listed:,} {'entry' if listed == 1 else 'entries'}"]
        if hidden:
            parts.append(f"{hidden:,} hidden (. to show)")
        if self.filter_text:
            parts.append(f"filter {display_name(self.filter_text)!r}: {len(self.entry_list.entries):,} shown")
        if self.marks:
            parts.append(f"{len(self.marks):,} marked (x to clear)")
        self._set_status(" · ".join(parts))


def _count_text(count: int) -> str:
    more = "+" if count >= 10_000 else ""
    return f"directory, {count:,}{more} {'entry' if count == 1 else 'entries'}"
