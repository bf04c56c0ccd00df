"""The Train pane's form: stage, preset, data, steps and output directory, with Start, Cancel and Resume."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select

from tui.train_job import PRESETS, STAGES

DEFAULT_OUT = "models/tinyllm"


@dataclass(frozen=True)
class FormValues:
    """What the form holds, as typed (checked by :func:`tui.train_job.parse_form`)."""

    stage: str
    preset: str
    data: str
    max_steps: str
    out: str


class TrainForm(Vertical):
    """The options of a training job and the buttons that drive it."""

    def compose(self) -> ComposeResult:
        with Horizontal(classes="train-field"):
            yield Label("stage", classes="train-label")
            yield Select([(s, s) for s in STAGES], value="all", allow_blank=False, compact=True, id="train-stage")
        with Horizontal(classes="train-field"):
            yield Label("preset", classes="train-label")
            yield Select([(p, p) for p in PRESETS], value="tiny", allow_blank=False, compact=True, id="train-preset")
        with Horizontal(classes="train-field"):
            yield Label("data", classes="train-label")
            yield Input(placeholder="files or dirs (default corpus)", compact=True, id="train-data")
        with Horizontal(classes="train-field"):
            yield Label("max steps", classes="train-label")
            yield Input(placeholder="default: one pass over the data", compact=True, id="train-steps")
        with Horizontal(classes="train-field"):
            yield Label("output", classes="train-label")
            yield Input(DEFAULT_OUT, placeholder="directory for the models", compact=True, id="train-out")
        with Horizontal(id="train-buttons"):
            yield Button("Start", id="train-start", variant="primary", compact=True)
            yield Button("Cancel", id="train-cancel", variant="error", compact=True)
            yield Button("Resume", id="train-resume", compact=True)

    def values(self) -> FormValues:
        """Return what the form holds now."""
        return FormValues(
            stage=str(self.query_one("#train-stage", Select).value),
            preset=str(self.query_one("#train-preset", Select).value),
            data=self.query_one("#train-data", Input).value,
            max_steps=self.query_one("#train-steps", Input).value,
            out=self.query_one("#train-out", Input).value,
        )

    def set_running(self, running: bool, *, resumable: bool) -> None:
        """Enable the buttons that make sense: Start and Resume when idle, Cancel while a job runs."""
        start, cancel = self.query_one("#train-start", Button), self.query_one("#train-cancel", Button)
        resume = self.query_one("#train-resume", Button)
        focused = any(button.has_focus for button in (start, cancel, resume))
        start.disabled = running
        cancel.disabled = not running
        resume.disabled = running or not resumable
        if focused:
            # A button that is disabled with the focus on it leaves the focus outside the pane, and
            # the pane's keys (Ctrl+S to cancel the job just started by a click) would not reach it.
            (cancel if running else start).focus()
