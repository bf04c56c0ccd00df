"""Tags and archives in the Files pane: tag or untag marked files, filter by tag, archive and extract."""

from __future__ import annotations

from textual.binding import Binding

TAG_ARCHIVE_BINDINGS: list[Binding] = []


class TagArchiveMixin:
    """Actions of :class:`~tui.widgets.files_pane.FilesPane` (a mixin; see ``file_operations.py`` for the pattern)."""
