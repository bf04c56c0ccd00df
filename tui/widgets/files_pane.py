"""The Files pane: a keyboard-driven browser of the workspace.

Directory scans and previews run in thread workers that call the pure functions of
``engine.workspace.listing`` and post typed messages back, so a huge directory never freezes the UI.
"""

from __future__ import annotations

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
from textual.worker import get_current_worker

from engine.errors import RouteshellError
from engine.names import display_name
from engine.plans.apply import recover
from engine.workspace import listing
from engine.workspace.listing import Entry
from tui.widgets.entry_list import EntryList
from tui.widgets.file_operations import OPERATION_BINDINGS, FileOperationsMixin
from tui.widgets.file_preview import Described, FilePreview, MetadataView, highlight


class FilesPane(FileOperationsMixin, Vertical):
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
    ]

    show_hidden: reactive[bool] = reactive(False, init=False)
    filter_text: reactive[str] = reactive("", init=False)

    @dataclass
    class EntriesLoaded(Message):
        generation: int
        directory: Path
        entries: list[Entry]
        select: str | None

    @dataclass
    class ScanProgress(Message):
        generation: int
        count: int

    @dataclass
    class ScanFailed(Message):
        generation: int
        directory: Path
        reason: str

    @dataclass
    class PreviewReady(Message):
        path: Path
        text: Text
        described: Described

    def __init__(self, root: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.root = root
        self.directory = root
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
        self.load(self.root)

    @work(thread=True, group="recover")
    def _recover(self) -> None:
        """Roll back a plan that a crash left half applied, before anything else changes files."""
        try:
            recovered = recover(self.root)
        except (RouteshellError, OSError) as exc:
            self.app.call_from_thread(self.notify, f"Recovery failed: {exc}", severity="error", markup=False)
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

    def load(self, directory: Path, *, select: str | None = None) -> None:
        """Start reading ``directory`` in a worker; the list updates when it is done."""
        self._generation += 1
        self._loading = True
        self._set_status(f"reading {self._relative(directory)} …")
        self._scan(self._generation, directory, select)

    @work(thread=True, exclusive=True, group="scan")
    def _scan(self, generation: int, directory: Path, select: str | None) -> None:
        worker = get_current_worker()

        def progress(count: int) -> None:
            if not worker.is_cancelled:
                self.post_message(self.ScanProgress(generation, count))

        try:
            entries = listing.scan_directory(self.root, directory, progress=progress)
        except (OSError, listing.OutsideWorkspace) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.post_message(self.ScanFailed(generation, directory, reason or "cannot read"))
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
        visible = listing.filter_entries(self._all, text=self.filter_text, show_hidden=self.show_hidden)
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
        self._preview(self.directory / event.entry.name, event.entry)

    @work(thread=True, exclusive=True, group="preview")
    def _preview(self, path: Path, entry: Entry) -> None:
        worker = get_current_worker()
        try:
            described = Described(entry.name, listing.metadata(self.root, path))
        except (OSError, listing.OutsideWorkspace) as exc:
            described = Described(entry.name, None, getattr(exc, "strerror", None) or str(exc))
        if entry.is_dir:
            if listing.inside(self.root, path):
                try:
                    count = listing.count_entries(self.root, path, limit=10_000)
                    text = Text(_count_text(count), style="italic")
                except OSError as exc:
                    text = Text(f"directory: {exc.strerror}", style="italic")
            else:
                text = Text("symlink leading outside the workspace: not followed", style="italic")
        else:
            preview = listing.read_preview(self.root, path)
            if worker.is_cancelled:
                return
            text = highlight(path, preview)
        if not worker.is_cancelled:
            self.post_message(self.PreviewReady(path, text, described))

    @on(PreviewReady)
    def _on_preview_ready(self, message: PreviewReady) -> None:
        current = self.entry_list.highlighted
        if current is None or self.directory / current.name != message.path:
            return
        self.query_one(FilePreview).show(message.text)
        self.query_one(MetadataView).describe(message.described)

    # -- navigation ----------------------------------------------------------------------

    @on(EntryList.Activated)
    def _on_activated(self, event: EntryList.Activated) -> None:
        if not event.entry.is_dir:
            self.query_one(FilePreview).focus()
            return
        target = self.directory / event.entry.name
        if not listing.inside(self.root, target):
            self.notify(
                f"{display_name(event.entry.name)} leads outside the workspace: not followed",
                severity="warning",
                markup=False,
            )
            return
        self._clear_filter_silently()
        self.load(target)

    def action_up(self) -> None:
        if self.query_one(FilePreview).has_focus:
            self.focus_entries()
            return
        if self.directory == self.root:
            self.app.bell()
            return
        self._clear_filter_silently()
        self.load(self.directory.parent, select=self.directory.name)

    def action_root(self) -> None:
        self._clear_filter_silently()
        self.load(self.root)

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
        if not field.display and not self.filter_text:
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

    def refresh_marks(self) -> None:
        """Show which entries of this directory are marked, and the count of all marks."""
        here = self.directory.relative_to(self.root).as_posix()
        prefix = "" if here == "." else here + "/"
        self.entry_list.marked = {
            p[len(prefix) :] for p in self.marks if p.startswith(prefix) and "/" not in p[len(prefix) :]
        }
        self.entry_list.refresh()
        self._update_status()

    # -- status --------------------------------------------------------------------------

    def _relative(self, directory: Path) -> str:
        try:
            rel = directory.relative_to(self.root)
        except ValueError:
            return display_name(str(directory))
        parts = [self.root.name or "/", *rel.parts]
        return display_name("/".join(parts)) + "/"

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
