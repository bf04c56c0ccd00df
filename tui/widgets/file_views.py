"""The Files pane's views over the whole workspace: duplicate files and directory sizes.

Each view is a modal screen that reads the workspace in its own worker and changes nothing: it
answers with what the user chose, and the pane marks the paths or goes where it says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding

from tui.screens.duplicates_screen import DuplicatesAnswer, DuplicatesScreen, MarkDuplicates, RevealFile
from tui.screens.sizes_screen import SizesScreen

if TYPE_CHECKING:
    from tui.widgets.files_pane import FilesPane

VIEW_BINDINGS: list[Binding] = [
    Binding("D", "duplicates", "Duplicates", show=False, id="files.duplicates",
            tooltip="Find duplicate files; mark the older copies or go to one"),
    Binding("S", "sizes", "Sizes", show=False, id="files.sizes",
            tooltip="Sizes of the directories here, largest first; Enter opens one"),
]  # fmt: skip


class FileViewsMixin:
    """Actions of :class:`~tui.widgets.files_pane.FilesPane` (a mixin; see ``file_operations.py`` for the pattern)."""

    def _view_pane(self) -> FilesPane:
        return self  # type: ignore[return-value]

    def action_duplicates(self) -> None:
        pane = self._view_pane()
        pane.app.push_screen(DuplicatesScreen(pane.root), callback=self._on_duplicates_answer)

    def action_sizes(self) -> None:
        pane = self._view_pane()
        pane.app.push_screen(SizesScreen(pane.root, pane.directory), callback=self._open_directory)

    def _on_duplicates_answer(self, answer: DuplicatesAnswer | None) -> None:
        pane = self._view_pane()
        if isinstance(answer, MarkDuplicates):
            pane.marks.update(answer.paths)
            pane.refresh_marks()
            count = len(answer.paths)
            pane.notify(f"Marked {count:,} duplicate{'s' * (count != 1)}; d moves them to the trash")
        elif isinstance(answer, RevealFile):
            directory, _, name = answer.path.rpartition("/")
            if name.startswith(".") and not pane.show_hidden:
                pane.show_hidden = True
            self._go_to(directory or ".", select=name)

    def _open_directory(self, directory: str | None) -> None:
        if directory is not None:
            self._go_to(directory)

    def _go_to(self, directory: str, *, select: str | None = None) -> None:
        pane = self._view_pane()
        pane._clear_filter_silently()
        pane.load(directory, select=select)
        pane.focus_entries()
