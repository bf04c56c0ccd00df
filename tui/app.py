"""The routeshell Textual application: wires the screens, bindings and commands together."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from engine.config.profiles import Profile
from engine.names import display_name
from tui.commands import ShellCommands
from tui.screens.approval_screen import ApprovalScreen
from tui.screens.help_screen import HelpScreen
from tui.screens.main_screen import MainScreen
from tui.widgets.agent_pane import AgentPane
from tui.widgets.checkpoint_list import CheckpointList
from tui.widgets.entry_list import EntryList
from tui.widgets.files_pane import FilesPane
from tui.widgets.serve_chat import ServeChat
from tui.widgets.serve_pane import ServePane
from tui.widgets.task_input import TaskInput
from tui.widgets.train_pane import TrainPane

HERE = Path(__file__).parent


class RouteshellApp(App[int]):
    """The shell window over one workspace and one profile."""

    TITLE = "routeshell"
    CSS_PATH: ClassVar[list[str | PurePath]] = [
        HERE / "app.tcss",
        HERE / "screens" / "main_screen.tcss",
        HERE / "screens" / "help_screen.tcss",
        HERE / "screens" / "dialog.tcss",
        HERE / "screens" / "approval_screen.tcss",
        HERE / "widgets" / "agent_pane.tcss",
        HERE / "widgets" / "files_pane.tcss",
        HERE / "widgets" / "train_pane.tcss",
        HERE / "widgets" / "serve_pane.tcss",
    ]
    COMMANDS = App.COMMANDS | {ShellCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Quit routeshell"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help", tooltip="Show every key"),
        Binding("1", "show_pane('agent')", "Agent", show=False, id="app.pane_agent", tooltip="Agent pane"),
        Binding("2", "show_pane('files')", "Files", show=False, id="app.pane_files", tooltip="Files pane"),
        Binding("3", "show_pane('train')", "Train", show=False, id="app.pane_train", tooltip="Train pane"),
        Binding("4", "show_pane('serve')", "Serve", show=False, id="app.pane_serve", tooltip="Serve pane"),
    ]

    def __init__(self, workspace: Path, profile: Profile) -> None:
        super().__init__()
        self.workspace = workspace
        self.profile = profile
        self.sub_title = f"{display_name(workspace.name or str(workspace))} · profile {profile.name}"

    def on_mount(self) -> None:
        self.push_screen(MainScreen(self.workspace, self.profile))

    def action_show_pane(self, pane_id: str) -> None:
        """Switch the main screen to ``pane_id``."""
        screen = self.screen
        if isinstance(screen, MainScreen):
            screen.show_pane(pane_id)

    def action_help(self) -> None:
        """Open the help screen, listing the bindings of every area."""
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(
            HelpScreen(
                [
                    ("Everywhere", [*self.BINDINGS, Binding("ctrl+p", "", tooltip="Command palette")]),
                    ("Files pane", FilesPane.BINDINGS),
                    ("Files list", EntryList.BINDINGS),
                    ("Agent pane", AgentPane.BINDINGS),
                    ("Agent task line", TaskInput.BINDINGS),
                    ("Plan approval", ApprovalScreen.BINDINGS),
                    ("Train pane", TrainPane.BINDINGS),
                    ("Train models list", CheckpointList.BINDINGS),
                    ("Serve pane", ServePane.BINDINGS),
                    ("Serve chat", ServeChat.BINDINGS),
                ]
            )
        )

    def _on_main_screen(self, pane: str) -> bool:
        """Show ``pane``; False (with a note) when a dialog is open over the panes, which it must not pass."""
        if not isinstance(self.screen, MainScreen):
            self.notify("Close the open dialog first (Esc), then run the command again", severity="warning")
            return False
        self.action_show_pane(pane)
        return True

    def run_files_action(self, action: str) -> None:
        """Show the Files pane and run one of its actions (from the command palette)."""
        if self._on_main_screen("files"):
            pane = self.screen.query_one(FilesPane)
            if pane.check_action(action, ()):
                getattr(pane, f"action_{action}")()
            else:
                pane.notify_busy()

    def run_agent_action(self, action: str, *args: str) -> None:
        """Show the Agent pane and run one of its actions (from the command palette)."""
        if self._on_main_screen("agent"):
            getattr(self.screen.query_one(AgentPane), f"action_{action}")(*args)

    def run_train_action(self, action: str) -> None:
        """Show the Train pane and run one of its actions (from the command palette)."""
        if self._on_main_screen("train"):
            getattr(self.screen.query_one(TrainPane), f"action_{action}")()

    def run_serve_action(self, action: str) -> None:
        """Show the Serve pane and run one of its actions (from the command palette)."""
        if self._on_main_screen("serve"):
            getattr(self.screen.query_one(ServePane), f"action_{action}")()
