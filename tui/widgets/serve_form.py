"""The Serve pane's form: the model (and its adapters), the address, the weight format, the device,
Start and Stop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select

from engine.names import display_name
from tui.serve_cli import DEVICES, DTYPES
from tui.serve_job import DEFAULT_HOST, DEFAULT_PORT

MODEL_PROMPT = "choose a finished model"


@dataclass(frozen=True)
class ServeFormValues:
    """What the form holds, as typed (checked by :func:`tui.serve_job.parse_serve_form`)."""

    model: Path | None
    adapters: str
    host: str
    port: str
    dtype: str
    api_key: str
    device: str = "cpu"


class ServeForm(Vertical):
    """The options of the server and the buttons that drive it; the models are offered, not typed."""

    def __init__(self, workspace: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.workspace = workspace
        #: The models offered, in the order shown.
        self.models: list[Path] = []

    def compose(self) -> ComposeResult:
        with Horizontal(classes="serve-field"):
            yield Label("model", classes="serve-label")
            yield Select[str]([], prompt=MODEL_PROMPT, compact=True, id="serve-model")
        with Horizontal(classes="serve-field"):
            yield Label("adapters", classes="serve-label")
            yield Input(placeholder="NAME=DIR … (optional)", compact=True, id="serve-adapters")
        with Horizontal(classes="serve-field"):
            yield Label("host", classes="serve-label")
            yield Input(DEFAULT_HOST, placeholder="address to listen on", compact=True, id="serve-host")
        with Horizontal(classes="serve-field"):
            yield Label("port", classes="serve-label")
            yield Input(str(DEFAULT_PORT), placeholder="0 for any free port", compact=True, id="serve-port")
        with Horizontal(classes="serve-field"):
            yield Label("weights", classes="serve-label")
            yield Select([(d, d) for d in DTYPES], value="auto", allow_blank=False, compact=True, id="serve-dtype")
        with Horizontal(classes="serve-field"):
            yield Label("device", classes="serve-label")
            yield Select([(d, d) for d in DEVICES], value="cpu", allow_blank=False, compact=True, id="serve-device")
        with Horizontal(classes="serve-field"):
            yield Label("API key", classes="serve-label")
            yield Input(placeholder="needed off loopback", password=True, compact=True, id="serve-key")
        with Horizontal(id="serve-buttons"):
            yield Button("Start", id="serve-start", variant="primary", compact=True)
            yield Button("Stop", id="serve-stop", variant="error", compact=True)

    @property
    def model_select(self) -> Select[str]:
        return self.query_one("#serve-model", Select)

    def offer(self, models: list[Path], *, choose: Path | None = None) -> None:
        """Add ``models`` to those offered (each once) and choose ``choose`` when given."""
        for model in models:
            if model not in self.models:
                self.models.append(model)
        select = self.model_select
        current = select.value if isinstance(select.value, str) else None
        select.set_options([(self._label(m), str(m)) for m in self.models])
        keep = str(choose) if choose is not None else current
        if keep is not None and Path(keep) in self.models:
            select.value = keep

    def _label(self, model: Path) -> Text:
        shown = model.relative_to(self.workspace) if model.is_relative_to(self.workspace) else model
        return Text(display_name(str(shown)), no_wrap=True, overflow="ellipsis")

    def values(self) -> ServeFormValues:
        """Return what the form holds now."""
        chosen = self.model_select.value
        return ServeFormValues(
            model=Path(chosen) if isinstance(chosen, str) else None,
            adapters=self.query_one("#serve-adapters", Input).value,
            host=self.query_one("#serve-host", Input).value,
            port=self.query_one("#serve-port", Input).value,
            dtype=str(self.query_one("#serve-dtype", Select).value),
            api_key=self.query_one("#serve-key", Input).value,
            device=str(self.query_one("#serve-device", Select).value),
        )

    def set_running(self, running: bool) -> None:
        """Enable Start when no server runs, Stop while one does; the options are fixed while it runs."""
        start, stop = self.query_one("#serve-start", Button), self.query_one("#serve-stop", Button)
        focused = self.screen.focused
        inside = focused is not None and self in focused.ancestors_with_self
        start.disabled = running
        stop.disabled = not running
        for field in self.query(Input):
            field.disabled = running
        for select in self.query(Select):
            select.disabled = running
        if inside and (focused is None or focused.disabled or self.screen.focused is not focused):
            # What held the focus is disabled now (the button clicked, the field Enter was pressed
            # in): the focus goes to the button that is enabled, not outside the pane, so the
            # pane's keys still reach it.
            (stop if running else start).focus()
