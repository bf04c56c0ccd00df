"""The shell window: four panes as tabs, a header and a footer of bindings."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, TabbedContent, TabPane

from engine.config.profiles import Profile
from engine.plans.policy import Policy
from tui.widgets.agent_pane import AgentPane
from tui.widgets.checkpoint_list import CheckpointList
from tui.widgets.files_pane import FilesPane
from tui.widgets.serve_pane import ServePane
from tui.widgets.train_pane import TrainPane

PANES: tuple[tuple[str, str], ...] = (("agent", "Agent"), ("files", "Files"), ("train", "Train"), ("serve", "Serve"))


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
                yield FilesPane(
                    self.workspace, id="files-pane", policy=Policy.from_profile(self.profile.data.get("policy"))
                )
            with TabPane("3 Train", id="train"):
                yield TrainPane(self.workspace, id="train-pane")
            with TabPane("4 Serve", id="serve"):
                yield ServePane(self.workspace, self.profile, id="serve-pane")
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
        elif pane_id == "train":
            self.query_one(TrainPane).focus_form()
        elif pane_id == "serve":
            self._scan_served_models()
            self.query_one(ServePane).focus_form()
        else:
            self.query_one(TabbedContent).query_one("Tabs").focus()

    def _scan_served_models(self) -> None:
        """The Serve pane offers the finished models under the Train pane's output directory as it is now."""
        out = self.query_one(TrainPane).form.values().out.strip()
        self.query_one(ServePane).scan_models(self.workspace / Path(out).expanduser() if out else None)

    @on(CheckpointList.ServeRequested)
    def _on_serve_requested(self, message: CheckpointList.ServeRequested) -> None:
        """A finished model from the Train pane goes to the Serve pane, which is shown."""
        self.query_one(ServePane).choose(message.path)
        self.show_pane("serve")
