"""The Agent pane's task line: an Input that recalls earlier tasks with up and down.

The history is the one ``--plain`` keeps too (:mod:`tui.task_history`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input

from tui.task_history import HISTORY_LIMIT, append_task, history_path, load_history

__all__ = ["TaskInput", "history_path"]


class TaskInput(Input):
    """A one-line task field; up and down walk through the tasks given before."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history(-1)", "Earlier task", show=False, id="task.earlier", tooltip="Recall the earlier task"),
        Binding("down", "history(1)", "Later task", show=False, id="task.later", tooltip="Recall the later task"),
    ]

    def __init__(self, history_file: Path, *, placeholder: str = "", id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, id=id)
        self.history_file = history_file
        self.history: list[str] = []
        # Position while walking the history; len(history) means "the line being typed".
        self._position = 0
        self._draft = ""

    def on_mount(self) -> None:
        self.history = load_history(self.history_file)
        self._position = len(self.history)

    def remember(self, task: str) -> str | None:
        """Add ``task`` to the history and the history file; return a warning when it cannot be saved."""
        if not self.history or self.history[-1] != task:
            self.history.append(task)
            del self.history[:-HISTORY_LIMIT]
            try:
                append_task(self.history_file, task)
            except OSError as exc:
                self._position = len(self.history)
                return f"Cannot save the task history in {self.history_file}: {exc.strerror or exc}"
        self._position = len(self.history)
        self._draft = ""
        return None

    def action_history(self, step: int) -> None:
        """Show the earlier (``-1``) or later (``1``) task; past the newest, the line being typed."""
        target = self._position + step
        if target < 0 or target > len(self.history):
            self.app.bell()
            return
        if self._position == len(self.history):
            self._draft = self.value
        self._position = target
        self.value = self._draft if target == len(self.history) else self.history[target]
        self.cursor_position = len(self.value)
