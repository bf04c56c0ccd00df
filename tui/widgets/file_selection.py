"""Selecting files by pattern, and the bulk rename and classify dialogs of the Files pane."""

from __future__ import annotations

from textual.binding import Binding

SELECTION_BINDINGS: list[Binding] = []


class SelectionMixin:
    """Actions of :class:`~tui.widgets.files_pane.FilesPane` (a mixin; see ``file_operations.py`` for the pattern)."""
