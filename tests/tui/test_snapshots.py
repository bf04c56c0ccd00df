"""Snapshots of every screen. Review new images before accepting them with --snapshot-update."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar

from textual.pilot import Pilot
from textual.widgets import Input

from tests.scripted_llm import Reply
from tests.tui.conftest import settle
from tui.widgets.agent_pane import AgentPane

SIZE = (100, 30)


def keys(*presses: str) -> Callable[[Pilot[int]], Awaitable[None]]:
    """A run_before script: let the first scan finish, press the keys, let their work finish."""

    async def script(pilot: Pilot[int]) -> None:
        await settle(pilot)
        for key in presses:
            await pilot.press(key)
            await settle(pilot)
        # A focused input's cursor blinks every half second: hold it on, or the picture depends
        # on when it is taken.
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    return script


def check(snap_compare, make_app, presses: Iterable[str] = (), size: tuple[int, int] = SIZE) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(), terminal_size=size, run_before=keys(*presses))


class TestShell:
    def test_files_pane_on_start(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app)

    def test_files_pane_at_80x24(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, size=(80, 24))

    def test_agent_pane(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["1"])

    def test_train_pane(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["3"])

    def test_serve_pane(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["4"])

    def test_help_screen(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["question_mark"])

    def test_command_palette(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["ctrl+p", "h", "i", "d", "d", "e", "n"])


class TestFiles:
    def test_python_preview(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["end", "up", "up", "up", "up", "up", "up", "enter", "enter"])

    def test_filter(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["slash", "t", "x", "t"])

    def test_hidden_files_shown(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["full_stop"])

    def test_markup_names_inside_directory(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["enter"])

    def test_binary_file(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["down", "down", "down", "down"])

    def test_symlink_outside(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["end", "up"])


class TestFileOperations:
    def test_marked_entries(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["down", "space", "down", "space"])

    def test_new_file_prompt(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["n", "a", ".", "t", "x", "t"])

    def test_delete_confirmation(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["end", "d"])

    def test_conflict_question(self, snap_compare, make_app, workspace) -> None:  # type: ignore[no-untyped-def]
        (workspace / "docs" / "README.md").write_text("other\n")
        check(snap_compare, make_app, ["end", "space", "home", "down", "enter", "c"])


class TestAgentPane:
    """The Agent pane against the scripted server; the approval dialog covers the clock and thread ids."""

    PLAN: ClassVar[dict[str, Any]] = {
        "version": 1,
        "goal": "greet [bold]loudly[/bold]",
        "steps": [
            {"op": "patch", "path": "src/pkg/hello.py", "find": 'f"hello {name}"', "replace": 'f"HELLO {name}"'},
            {"op": "write", "path": "[b]new.txt", "content": "\x1b[31mred\n"},
            {"op": "run", "argv": ["python3", "src/pkg/hello.py"]},
        ],
    }

    def waiting_plan(self, *presses: str) -> Callable[[Pilot[int]], Awaitable[None]]:
        """A run_before script: with approval ask, run a task until its plan waits, then press keys."""

        async def script(pilot: Pilot[int]) -> None:
            await settle(pilot)
            await pilot.press("1")
            await settle(pilot)
            # Set directly: the binding's notification would still be showing in the image.
            pilot.app.screen.query_one(AgentPane).approval = "ask"
            await pilot.press(*"shout the greeting", "enter")
            await settle(pilot)
            for key in presses:
                await pilot.press(key)
                await settle(pilot)

        return script

    def test_approval_dialog(self, snap_compare, make_app, scripted_llm, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
        monkeypatch.setenv("LLM_API_BASE", scripted_llm.base_url)
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        scripted_llm.enqueue(Reply(self.PLAN))
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=self.waiting_plan())

    def test_reject_reason(self, snap_compare, make_app, scripted_llm, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
        monkeypatch.setenv("LLM_API_BASE", scripted_llm.base_url)
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        scripted_llm.enqueue(Reply(self.PLAN))
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=self.waiting_plan("r", *"too loud"))
