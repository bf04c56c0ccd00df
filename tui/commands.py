"""Command-palette commands (Ctrl+P): panes, Files, Agent, Train and Serve actions, help."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.widgets.agent_pane import APPROVAL_HELP

if TYPE_CHECKING:
    from tui.app import RouteshellApp


class ShellCommands(Provider):
    """Switch panes, drive the Files and Agent panes and open the help, by name."""

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = cast("RouteshellApp", self.app)
        commands: list[tuple[str, Callable[[], object], str]] = [
            (f"Show the {title} pane", partial(app.action_show_pane, pane), f"Switch to the {title} pane")
            for pane, title in (("agent", "Agent"), ("files", "Files"), ("train", "Train"), ("serve", "Serve"))
        ]
        commands += [
            ("Files: toggle hidden files", partial(app.run_files_action, "toggle_hidden"), "Show or hide dotfiles"),
            ("Files: filter entries", partial(app.run_files_action, "filter"), "Type to narrow the list"),
            ("Files: go to the workspace root", partial(app.run_files_action, "root"), "Back to the top"),
            ("Files: reload the directory", partial(app.run_files_action, "reload"), "Read it again"),
            ("Files: select by pattern", partial(app.run_files_action, "select_pattern"), "Mark what a glob selects"),
            ("Files: find by meaning", partial(app.run_files_action, "find_by_meaning"), "Mark files by description"),
            ("Files: rename by pattern", partial(app.run_files_action, "rename_pattern"), "Template or regex"),
            ("Files: classify by rules", partial(app.run_files_action, "classify"), "Move files by their content"),
            ("Files: tag or untag", partial(app.run_files_action, "tag"), "+add -remove on the marked files"),
            ("Files: filter by tag", partial(app.run_files_action, "tag_filter"), "Show the files with a tag"),
            ("Files: archive the marked entries", partial(app.run_files_action, "archive"), ".zip, .tar.gz, .tar.xz"),
            ("Files: extract this archive", partial(app.run_files_action, "extract"), "Into a new directory"),
            ("Files: find duplicate files", partial(app.run_files_action, "duplicates"), "Identical content"),
            ("Files: directory sizes", partial(app.run_files_action, "sizes"), "Largest directories first"),
            ("Agent: new task", partial(app.action_show_pane, "agent"), "Type a task for the agents"),
            ("Agent: review the waiting plan", partial(app.run_agent_action, "review"), "Approve, edit or reject it"),
            ("Agent: stop after the current step", partial(app.run_agent_action, "stop"), "End the run cleanly"),
            ("Agent: clear the transcript", partial(app.run_agent_action, "clear"), "Start with an empty log"),
            ("Train: start a job", partial(app.run_train_action, "start"), "Train with the form's options"),
            ("Train: cancel the job", partial(app.run_train_action, "cancel"), "Stop it with a checkpoint"),
            ("Train: resume the job", partial(app.run_train_action, "resume"), "Continue from its checkpoint"),
            ("Serve: start the server", partial(app.run_serve_action, "start"), "Serve the chosen model"),
            ("Serve: stop the server", partial(app.run_serve_action, "stop"), "Stop serving"),
            ("Show the keys", app.action_help, "Every key binding, by area"),
        ]
        commands += [
            (f"Agent: approval {mode}", partial(app.run_agent_action, "set_approval", mode), help_text.capitalize())
            for mode, help_text in APPROVAL_HELP.items()
        ]
        return commands

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
