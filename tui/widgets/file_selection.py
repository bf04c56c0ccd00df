"""Selecting files by pattern, and the bulk rename and classify dialogs of the Files pane.

Select by pattern only marks entries. Rename by pattern and classify write a plan whose dialog
previews it expanded; the expanded plan is applied like every other operation of the pane
(journaled, undoable with ``u``, with progress and Escape to cancel when it is long), and only if
nothing its preview read changed since it was shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.binding import Binding

from engine.plans.file_plans import join
from tui.screens.classify_screen import ClassifyScreen
from tui.screens.plan_preview import Preview, move_pairs, plural
from tui.screens.rename_screen import RenameScreen
from tui.screens.select_screen import SelectScreen

if TYPE_CHECKING:
    from tui.widgets.files_pane import FilesPane

SELECTION_BINDINGS: list[Binding] = [
    Binding("s", "select_pattern", "Select", show=False, id="files.select_pattern",
            tooltip="Mark every entry a glob and filters select"),
    Binding("w", "rename_pattern", "Rename by pattern", show=False, id="files.rename_pattern",
            tooltip="Rename marked entries (or this one) by template or regex"),
    Binding("C", "classify", "Classify", show=False, id="files.classify",
            tooltip="Move marked files (or this directory's) into folders by rules"),
]  # fmt: skip


class SelectionMixin:
    """Actions of :class:`~tui.widgets.files_pane.FilesPane` (a mixin; see ``file_operations.py`` for the pattern)."""

    def _pane(self) -> FilesPane:
        return self  # type: ignore[return-value]

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_select_pattern(self) -> None:
        pane = self._pane()
        found = await pane.app.push_screen_wait(SelectScreen(pane.root))
        if found is None:
            return
        pane.marks.update(found)
        pane.refresh_marks()
        pane.notify(f"Marked {plural(len(found), 'entry', 'entries')}")

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_rename_pattern(self) -> None:
        pane = self._pane()
        paths = pane._selection()
        if not paths:
            pane.notify("Nothing to rename: mark entries with space or s first", severity="warning")
            return
        await self._apply_moves(await pane.app.push_screen_wait(RenameScreen(pane.root, pane.policy, paths)))

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_classify(self) -> None:
        pane = self._pane()
        paths = sorted(pane.marks) or [
            join(pane.directory, entry.name) for entry in pane.entry_list.entries if entry.kind == "file"
        ]
        if not paths:
            pane.notify("No files here to classify: mark some with space or s", severity="warning")
            return
        await self._apply_moves(await pane.app.push_screen_wait(ClassifyScreen(pane.root, pane.policy, paths)))

    async def _apply_moves(self, preview: Preview | None) -> None:
        """Apply the plan a dialog previewed (None: it was cancelled); marks follow the files it moves."""
        pane = self._pane()
        if preview is None or preview.plan is None or not await pane._apply(preview.plan, seen=preview.seen):
            return
        for source, target in move_pairs(preview.plan):
            if source in pane.marks:
                pane.marks.discard(source)
                pane.marks.add(target)
        pane.refresh_marks()
