"""The Train pane's models: the checkpoints of the output directory and the model card of the one highlighted.

Finished models are found on disk (:func:`tui.train_job.find_models`, in a thread worker) and
announced by the job's ``checkpoint`` events; an intermediate checkpoint is listed too, to be
resumed from, but only a finished model can go to the Serve pane. Paths and the card are shown
escaped (``engine.names``), never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from engine.names import display_name, display_text
from tui.error_line import one_line
from tui.train_job import find_models, read_model_card

NO_MODELS = "(no models yet: they appear here when a stage finishes)"


#: What a listed directory holds: a finished model, a checkpoint to resume from, or a tokenizer.
CheckpointKind = Literal["model", "checkpoint", "tokenizer"]
KIND_LABELS: dict[CheckpointKind, str] = {
    "model": "model",
    "checkpoint": "checkpoint, resumable",
    "tokenizer": "tokenizer",
}


@dataclass
class Checkpoint:
    """A directory the list shows; only a ``model`` (finished and loadable) can be served."""

    path: Path
    kind: CheckpointKind
    note: str = ""  # e.g. "pretrain, step 30"

    @property
    def final(self) -> bool:
        return self.kind == "model"


class CheckpointList(Vertical):
    """The models under the output directory, and the model card of the highlighted one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "serve", "Serve", id="train.serve",
                tooltip="Send the highlighted finished model to the Serve pane"),
        Binding("f5", "rescan", "Rescan", show=False, id="train.rescan",
                tooltip="Look for finished models in the output directory again"),
    ]  # fmt: skip

    @dataclass
    class ServeRequested(Message):
        """The user chose ``path``, a finished model directory, for the Serve pane."""

        path: Path

    @dataclass
    class CardRead(Message):
        path: Path
        text: str  # not yet escaped

    @dataclass
    class ModelsFound(Message):
        out: Path
        paths: list[Path]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.checkpoints: list[Checkpoint] = []
        self.out: Path | None = None

    def compose(self) -> ComposeResult:
        yield OptionList(id="checkpoint-options")
        with VerticalScroll(id="checkpoint-card-scroll"):
            yield Static("", id="checkpoint-card", markup=False)

    def on_mount(self) -> None:
        self._redraw()

    @property
    def options(self) -> OptionList:
        return self.query_one("#checkpoint-options", OptionList)

    @property
    def highlighted(self) -> Checkpoint | None:
        index = self.options.highlighted
        return self.checkpoints[index] if index is not None and 0 <= index < len(self.checkpoints) else None

    # -- what is listed ------------------------------------------------------------------

    def show_output_dir(self, out: Path) -> None:
        """List the finished models under ``out`` (read in a worker), dropping those of another directory."""
        if out != self.out:
            self.out = out
            self.checkpoints = [c for c in self.checkpoints if _under(c.path, out)]
            self._redraw()
        self._scan(out)

    def announce(self, path: Path, *, kind: CheckpointKind, note: str) -> None:
        """Add (or update) a directory a ``checkpoint`` event named."""
        for checkpoint in self.checkpoints:
            if checkpoint.path == path:
                if not checkpoint.final:
                    checkpoint.kind = kind
                checkpoint.note = note
                break
        else:
            self.checkpoints.append(Checkpoint(path, kind, note))
        self._redraw(select=path)

    @work(thread=True, exclusive=True, group="checkpoint-scan", exit_on_error=False)
    def _scan(self, out: Path) -> None:
        self.post_message(self.ModelsFound(out, find_models(out)))

    @on(ModelsFound)
    def _on_models_found(self, message: ModelsFound) -> None:
        if message.out != self.out:
            return
        known = {c.path: c for c in self.checkpoints}
        for path in message.paths:
            if path in known:
                known[path].kind = "model"
            else:
                self.checkpoints.append(Checkpoint(path, "model", "found on disk"))
        self._redraw()

    def _redraw(self, select: Path | None = None) -> None:
        current = self.highlighted
        keep = select or (current.path if current else None)
        options = self.options
        options.clear_options()
        if not self.checkpoints:
            options.add_option(Option(Text(NO_MODELS, style="dim italic"), disabled=True))
            self._show_card(None)
            return
        options.add_options([Option(self._label(c)) for c in self.checkpoints])
        paths = [c.path for c in self.checkpoints]
        options.highlighted = paths.index(keep) if keep in paths else len(paths) - 1

    def _label(self, checkpoint: Checkpoint) -> Text:
        shown = checkpoint.path
        if self.out is not None and _under(shown, self.out):
            # Named from the output directory on: "out/sft", short enough for the list.
            shown = shown.relative_to(self.out.parent)
        text = Text(
            display_name(str(shown)), style="bold" if checkpoint.final else "", no_wrap=True, overflow="ellipsis"
        )
        kind = KIND_LABELS[checkpoint.kind]
        text.append(f"  {kind}" + (f" · {display_name(checkpoint.note)}" if checkpoint.note else ""), style="dim")
        return text

    # -- the model card ------------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#checkpoint-options")
    def _on_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._show_card(self.highlighted)

    def _show_card(self, checkpoint: Checkpoint | None) -> None:
        card = self.query_one("#checkpoint-card", Static)
        if checkpoint is None:
            card.update("")
            return
        card.update(Text("reading the model card …", style="dim italic"))
        self._read_card(checkpoint.path)

    @work(thread=True, exclusive=True, group="checkpoint-card", exit_on_error=False)
    def _read_card(self, path: Path) -> None:
        try:
            text = read_model_card(path)
        except Exception as exc:
            # A card that cannot be shown costs its view, never the app.
            text = f"(cannot show the model card: {one_line(exc, unexpected=True)})"
        self.post_message(self.CardRead(path, text))

    @on(CardRead)
    def _on_card_read(self, message: CardRead) -> None:
        current = self.highlighted
        if current is None or current.path != message.path:
            return
        self.query_one("#checkpoint-card", Static).update(Text(display_text(message.text)))
        self.query_one("#checkpoint-card-scroll", VerticalScroll).scroll_home(animate=False)

    @property
    def card_text(self) -> str:
        """The model card as shown (plain characters)."""
        rendered = self.query_one("#checkpoint-card", Static).content
        return rendered.plain if isinstance(rendered, Text) else str(rendered)

    # -- actions -------------------------------------------------------------------------

    def action_serve(self) -> None:
        checkpoint = self.highlighted
        if checkpoint is None:
            self.notify("No model to serve yet: train one first", severity="warning")
            return
        if not checkpoint.final:
            self.notify("Only a finished model can be served: resume the job to finish it", severity="warning")
            return
        self.post_message(self.ServeRequested(checkpoint.path))

    def action_rescan(self) -> None:
        if self.out is not None:
            self._scan(self.out)


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
