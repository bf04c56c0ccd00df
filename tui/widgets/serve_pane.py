"""The Serve pane: the model chosen in the Train pane and the command that will serve it.

Serving is not in this version: the pane says so plainly, and shows the chosen model and the
``routeshell serve`` line that the Serve pane will run. It starts nothing.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widgets import Static

from engine.names import display_name
from tui.train_job import serve_command

NOT_YET = (
    "Serving is not available in this version of routeshell. Here you will start and stop a local "
    "OpenAI-compatible server for a trained TinyLLM and watch its requests."
)
HOW = "Pick a finished model in the Train pane (3) and press s to bring it here."


class ServePane(Static):
    """What will be served, and how; nothing runs from here yet."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.model: Path | None = None

    def on_mount(self) -> None:
        self._show()

    def choose(self, model: Path) -> None:
        """Show ``model`` (a finished model directory) as the one to serve."""
        self.model = model
        self._show()

    @property
    def command(self) -> str | None:
        """The command that will serve the chosen model, or None before one is chosen."""
        return serve_command(self.model) if self.model is not None else None

    def _show(self) -> None:
        text = Text()
        text.append("The Serve pane\n\n", style="bold")
        text.append(NOT_YET + "\n\n", style="dim")
        if self.model is None or self.command is None:
            text.append(HOW)
        else:
            text.append("model      ", style="bold")
            text.append(display_name(str(self.model)) + "\n")
            text.append("serve with ", style="bold")
            text.append(display_name(self.command))
            text.append("\n           (the command of the Serve pane, arriving in a later version)", style="dim")
        self.update(text)
