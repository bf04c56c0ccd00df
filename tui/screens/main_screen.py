"""The shell window: four panes as tabs, a header and a footer of bindings."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, TabbedContent, TabPane

from engine.config.profiles import Profile
from tui.widgets.agent_pane import AgentPane
from tui.widgets.files_pane import FilesPane
from tui.widgets.planned_pane import PlannedPane

PANES: tuple[tuple[str, str], ...] = (("agent", "Agent"), ("files", "Files"), ("train", "Train"), ("serve", "Serve"))

TRAIN_PROMISE = (
    "Here you will train the local TinyLLM from scratch: a SentencePiece tokenizer, pretraining, "
    "supervised fine-tuning, and the LoRA router, each as a background job with progress and logs."
)
SERVE_PROMISE = (
    "Here you will start and stop a local OpenAI-compatible server for the trained TinyLLM and watch its requests."
)


class MainScreen(Screen[None]):
    """Tabs for the Agent, Files, Train and Serve panes."""

    def __init__(self, workspace: Path, profile: Profile) -> None:
        super().__init__()
        self.workspace = workspace
        self.profile = profile

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="»")
        with TabbedContent(initial="files", id="panes"):
            with TabPane("1 Agent", id="agent"):
                yield AgentPane(self.workspace, self.profile, id="agent-pane")
            with TabPane("2 Files", id="files"):
                yield FilesPane(self.workspace, id="files-pane")
            with TabPane("3 Train", id="train"):
                yield PlannedPane("The Train pane", TRAIN_PROMISE)
            with TabPane("4 Serve", id="serve"):
                yield PlannedPane("The Serve pane", SERVE_PROMISE)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(FilesPane).focus_entries()

    def show_pane(self, pane_id: str) -> None:
        """Switch to the pane ``pane_id`` and focus its main widget."""
        self.query_one(TabbedContent).active = pane_id
        if pane_id == "files":
            self.query_one(FilesPane).focus_entries()
        elif pane_id == "agent":
            self.query_one(AgentPane).focus_input()
        else:
            self.query_one(TabbedContent).query_one("Tabs").focus()
