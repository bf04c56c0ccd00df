"""The one task history: the Agent pane and --plain read and write the same file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.tui.conftest import settle
from tui.app import RouteshellApp
from tui.plain import TaskHistory
from tui.task_history import append_task, history_path, load_history
from tui.widgets.task_input import TaskInput


def test_a_task_with_a_lone_surrogate_is_kept_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "state" / "history"
    append_task(path, "rename caf\udce9.txt")
    append_task(path, "two\nlines")
    assert load_history(path) == ["rename caf\udce9.txt", "two\nlines"]
    assert all(json.loads(line) for line in path.read_text(encoding="ascii").splitlines())


def test_damaged_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "history"
    path.write_bytes(b'"first"\n+an old prompt_toolkit line\n\xff\xfe\n"second"\n')
    assert load_history(path) == ["first", "second"]


def test_plain_keeps_tasks_not_commands_in_the_shared_file() -> None:
    history = TaskHistory(history_path())
    history.store_string("/stream on")
    history.store_string("add a README")
    assert load_history(history_path()) == ["add a README"]
    assert list(history.load_history_strings()) == ["add a README"]


async def test_a_task_from_plain_is_recalled_in_the_agent_pane(make_app) -> None:  # type: ignore[no-untyped-def]
    TaskHistory(history_path()).store_string("typed in --plain")
    app: RouteshellApp = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        field = app.screen.query_one(TaskInput)
        await pilot.press("up")
        assert field.value == "typed in --plain"
        # A lone surrogate (undecodable input) is remembered, not a crash.
        assert field.remember("caf\udce9") is None
    assert load_history(history_path())[-1] == "caf\udce9"
