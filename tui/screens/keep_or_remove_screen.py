"""A question with two answers, keep or remove: what happens to the originals once they are archived."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class KeepOrRemoveScreen(ModalScreen[bool | None]):
    """Dismiss with False on k or Keep, with True on r or Remove, with None on Escape (do nothing)."""

    CSS_PATH = "keep_or_remove_screen.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", "answer(False)", "Keep", id="keep_or_remove.keep", tooltip="Keep the originals"),
        Binding("r", "answer(True)", "Remove", id="keep_or_remove.remove", tooltip="Move the originals to the trash"),
        Binding("escape", "cancel", "Cancel", id="keep_or_remove.cancel", tooltip="Close without doing anything"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Keep (k)", id="keep", variant="primary")
                yield Button("Remove (r)", id="remove", variant="error")
            yield Label("Esc to cancel", classes="dialog-hint")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "remove")

    def action_answer(self, remove: bool) -> None:
        self.dismiss(remove)

    def action_cancel(self) -> None:
        self.dismiss(None)
