"""Asked once per conflict when a copy or move meets an existing target."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label

from engine.names import display_name
from engine.plans.file_plans import Conflict


class ConflictScreen(ModalScreen[tuple[Conflict, bool] | None]):
    """Overwrite, skip or rename, optionally for every remaining conflict; Escape cancels all."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "choose('overwrite')", "Overwrite", id="conflict.overwrite", tooltip="Replace the target"),
        Binding("s", "choose('skip')", "Skip", id="conflict.skip", tooltip="Leave this one out"),
        Binding("r", "choose('rename')", "Rename", id="conflict.rename", tooltip="Use a free name beside it"),
        Binding("a", "toggle_all", "All", id="conflict.all", tooltip="Apply the choice to every conflict"),
        Binding("escape", "cancel", "Cancel", id="conflict.cancel", tooltip="Cancel the whole operation"),
    ]

    def __init__(self, source: str, target: str, remaining: int) -> None:
        super().__init__()
        self.source = source
        self.target = target
        self.remaining = remaining

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"{display_name(self.target)} already exists.", markup=False)
            yield Label(f"Incoming: {display_name(self.source)}", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Overwrite (o)", id="overwrite", variant="error")
                yield Button("Skip (s)", id="skip")
                yield Button("Rename (r)", id="rename", variant="primary")
            yield Checkbox(f"Same choice for all {self.remaining} remaining (a)", id="all", value=False)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_choose(str(event.button.id))

    def action_choose(self, choice: str) -> None:
        self.dismiss((Conflict(choice), self.query_one("#all", Checkbox).value))

    def action_toggle_all(self) -> None:
        box = self.query_one("#all", Checkbox)
        box.value = not box.value

    def action_cancel(self) -> None:
        self.dismiss(None)
