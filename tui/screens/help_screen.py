"""The ``?`` help screen: every key binding, read from the widgets that own them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    """Lists the bindings of each area, so the help can never drift from the real keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close", tooltip="Close the help"),
    ]

    def __init__(self, sections: Iterable[tuple[str, Iterable[BindingType]]]) -> None:
        super().__init__()
        self.sections = [(title, [b for b in bindings if isinstance(b, Binding)]) for title, bindings in sections]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "Keys"
            body.border_subtitle = "↑↓ PgUp PgDn to scroll · Esc to close"
            yield Static(self._table(), id="help-table")

    def _table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(justify="right", style="bold", no_wrap=True)
        table.add_column()
        for index, (title, bindings) in enumerate(self.sections):
            if index:
                table.add_row("", "")
            table.add_row("", Text(title, style="bold underline"))
            for binding in bindings:
                keys = " ".join(self._key_display(key) for key in binding.key.split(","))
                table.add_row(Text(keys), Text(binding.tooltip or binding.description))
        return table

    def _key_display(self, key: str) -> str:
        return self.app.get_key_display(Binding(key.strip(), ""))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
