"""A pane whose feature is not in this version: it says plainly what will arrive there."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class PlannedPane(Static):
    """Plain text naming what the pane will do, and that it does not do it yet."""

    def __init__(self, title: str, promise: str, *, id: str | None = None) -> None:
        text = Text()
        text.append(f"{title} is not available in this version of routeshell.\n\n", style="bold")
        text.append(promise)
        super().__init__(text, id=id, classes="planned-pane")
