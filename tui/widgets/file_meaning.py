"""Find by meaning in the Files pane: mark the files closest in meaning to a description.

The dialog (:class:`~tui.screens.meaning_screen.MeaningScreen`) searches in its own worker and
changes nothing; the pane marks what it found, so that every operation on marked entries (move,
delete, tag, archive) applies to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding

from engine.names import display_line, display_name
from tui.screens.meaning_screen import FoundByMeaning, MeaningScreen
from tui.screens.plan_preview import plural

if TYPE_CHECKING:
    from tui.widgets.files_pane import FilesPane

MEANING_BINDINGS: list[Binding] = [
    Binding("M", "find_by_meaning", "Find by meaning", show=False, id="files.find_by_meaning",
            tooltip="Mark the files closest in meaning to a description"),
]  # fmt: skip


class FileMeaningMixin:
    """Actions of :class:`~tui.widgets.files_pane.FilesPane` (a mixin; see ``file_operations.py`` for the pattern)."""

    def _meaning_pane(self) -> FilesPane:
        return self  # type: ignore[return-value]

    def action_find_by_meaning(self) -> None:
        pane = self._meaning_pane()
        pane.app.push_screen(MeaningScreen(pane.root), callback=self._on_found_by_meaning)

    def _on_found_by_meaning(self, found: FoundByMeaning | None) -> None:
        pane = self._meaning_pane()
        if found is None:
            return
        for warning in found.warnings:
            pane.notify(display_line(warning), title="File index", severity="warning", markup=False)
        paths = [path for path, _score in found.ranked]
        pane.marks.update(paths)
        pane.refresh_marks()
        best, score = found.ranked[0]
        pane.notify(
            f"Marked {plural(len(paths), 'file')} by meaning; the closest is {display_name(best)} ({score:.2f})",
            markup=False,
        )
