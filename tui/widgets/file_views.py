"""The Files pane's views over the whole workspace: duplicate files and directory sizes."""

from __future__ import annotations

from textual.binding import Binding

VIEW_BINDINGS: list[Binding] = []


class FileViewsMixin:
    """Actions of :class:`~tui.widgets.files_pane.FilesPane` (a mixin; see ``file_operations.py`` for the pattern)."""
