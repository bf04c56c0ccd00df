"""Text from files and models reaches the TUI literally: no terminal escapes, no markup, tabs as tab stops."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from engine.config.profiles import load_profile
from tests.scripted_llm import Reply, ScriptedLLM
from tests.tui.conftest import screen_text, settle, wait_until
from tui.app import RouteshellApp
from tui.screens.approval_screen import ApprovalScreen
from tui.widgets.agent_pane import AgentPane
from tui.widgets.file_preview import FilePreview
from tui.widgets.task_input import TaskInput

SIZE = (110, 36)
#: Clears the screen, sets the terminal title, rings the bell; then markup, a tab, C1 CSI, a bidi override.
HOSTILE = "\x1b[2J\x1b]0;pwned\x07 [red]x[/red]\n\tindented\n\x9b31m c1 \u202eevil\n"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\t")


def assert_literal(shown: str, indent: str) -> None:
    """``HOSTILE`` was shown as characters, never sent to the terminal as controls."""
    for raw in RAW:
        assert raw not in shown
    assert "\\x1b[2J\\x1b]0;pwned\\x07 [red]x[/red]" in shown
    assert "\\u009b31m c1 \\u202eevil" in shown
    assert indent + "indented" in shown
    assert "\\tindented" not in shown


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.mark.parametrize("name", ["hostile.txt", "hostile.py"])
async def test_files_pane_preview_shows_control_characters_literally(tmp_path: Path, name: str) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / name).write_text(HOSTILE)
    app = RouteshellApp(root, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        body = app.screen.query_one(FilePreview).query_one("#preview-body", Static)
        await wait_until(pilot, lambda: "indented" in str(body.render()), "the preview")
        # Highlighted or not, the preview is text of escapes; the tab is spaces to a tab stop of 4.
        assert_literal(str(body.render()), "    ")
        assert_literal(screen_text(app), "    ")


async def test_approval_dialog_shows_a_hostile_plan_literally(
    workspace: Path, scripted_llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch, state_home: None
) -> None:
    monkeypatch.setenv("LLM_API_BASE", scripted_llm.base_url)
    plan = {"version": 1, "goal": "\x1b]0;pwned\x07 [b]goal", "steps": [
        {"op": "write", "path": "notes.txt", "content": HOSTILE}]}  # fmt: skip
    scripted_llm.enqueue(Reply(plan))
    app = RouteshellApp(workspace, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        app.screen.query_one(AgentPane).action_set_approval("ask")
        app.screen.query_one(TaskInput).value = "write the notes"
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the approval dialog")
        await settle(pilot)
        shown = screen_text(app)
        # In the diff a tab goes to the next stop of 8 after the "+" marker, as a terminal shows it.
        assert_literal(shown, "+       ")
        assert "goal: \\x1b]0;pwned\\x07 [b]goal" in shown
    assert not (workspace / "notes.txt").exists()


async def test_a_newline_in_a_name_adds_no_line_to_the_approval_diff(
    workspace: Path, scripted_llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch, state_home: None
) -> None:
    monkeypatch.setenv("LLM_API_BASE", scripted_llm.base_url)
    plan = {"version": 1, "goal": "notes", "steps": [
        {"op": "write", "path": "notes.txt\n@@ -0,0 +1 @@\n+hello world", "content": "curl x | sh\n"}]}  # fmt: skip
    scripted_llm.enqueue(Reply(plan))
    app = RouteshellApp(workspace, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        app.screen.query_one(AgentPane).action_set_approval("ask")
        app.screen.query_one(TaskInput).value = "write the notes"
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the approval dialog")
        diff = str(app.screen.query_one("#approval-diff", Static).render()).splitlines()
        name = "notes.txt\\n@@ -0,0 +1 @@\\n+hello world"
        expected = ["--- /dev/null", f"+++ b/{name}", "@@ -0,0 +1 @@", "+curl x | sh"]
        assert [line.strip() for line in diff[1:]] == expected
