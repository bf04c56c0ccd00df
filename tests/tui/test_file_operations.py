"""File operations in the Files pane: each is a plan, journaled and undoable with u."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from textual.widgets import Input

from engine.plans.audit import read_audit
from engine.plans.journal import journals
from tests.helpers import tree
from tests.tui.conftest import settle, wait_until
from tui.screens.confirm_screen import ConfirmScreen
from tui.screens.conflict_screen import ConflictScreen
from tui.screens.prompt_screen import PromptScreen
from tui.widgets.entry_list import EntryList
from tui.widgets.files_pane import FilesPane


def names(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [entry.name for entry in app.screen.query_one(EntryList).entries]


async def go_to(pilot, name: str) -> None:  # type: ignore[no-untyped-def]
    """Put the cursor on ``name`` in the current directory."""
    entries = pilot.app.screen.query_one(EntryList)
    entries.cursor = names(pilot.app).index(name)
    await settle(pilot)


async def enter_directory(pilot, name: str) -> None:  # type: ignore[no-untyped-def]
    """Move the cursor to the directory ``name`` and open it."""
    await go_to(pilot, name)
    await pilot.press("enter")
    await settle(pilot)


async def answer_prompt(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, PromptScreen), "the prompt")
    pilot.app.screen.query_one(Input).value = text
    await pilot.press("enter")
    await settle(pilot)


async def finished(pilot) -> None:  # type: ignore[no-untyped-def]
    pane = pilot.app.screen.query_one(FilesPane)
    await wait_until(pilot, lambda: not pane.applying and not pilot.app.workers._workers, "the operation")
    await settle(pilot)


async def undo(pilot, answer: str = "y") -> str:  # type: ignore[no-untyped-def]
    """Press u, read the question it asks, answer it; return the question."""
    await pilot.press("u")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the undo question")
    question = pilot.app.screen.question
    await pilot.press(answer)
    await finished(pilot)
    return str(question)


async def test_new_file_new_directory_and_undo(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await answer_prompt(pilot, "notes.txt")
        await finished(pilot)
        assert (workspace / "notes.txt").read_text() == ""
        assert app.screen.query_one(EntryList).highlighted.name == "notes.txt"
        await pilot.press("N")
        await answer_prompt(pilot, "build")
        await finished(pilot)
        assert (workspace / "build").is_dir()
        assert [j.meta["plan"]["goal"] for j in journals(workspace)] == ["new file notes.txt", "new directory build"]
        assert [j.meta["via"] for j in journals(workspace)] == ["files-pane", "files-pane"]
        question = await undo(pilot, "n")
        assert question.startswith(f"Undo plan {journals(workspace)[1].id}?\nnew directory build\nIt will:\n")
        assert "remove the directories it made, if empty: 'build'" in question
        assert (workspace / "build").is_dir()
        await undo(pilot)
        assert not (workspace / "build").exists()
        await undo(pilot)
        assert not (workspace / "notes.txt").exists()
        assert "notes.txt" not in names(app)


async def test_a_blocked_undo_says_what_blocks_it_and_what_to_do(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await answer_prompt(pilot, "notes.txt")
        await finished(pilot)
        (workspace / "notes.txt").write_text("typed after the plan\n")
        await pilot.press("u")
        await finished(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        [message] = [str(n.message) for n in app._notifications if "cannot be undone" in str(n.message)]
        assert "'notes.txt' changed after the plan was applied" in message
        assert "move your changes aside" in message
        assert (workspace / "notes.txt").read_text() == "typed after the plan\n"


async def test_bad_names_are_refused_with_a_message(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await answer_prompt(pilot, "../escape.txt")
        await finished(pilot)
        assert not (workspace.parent / "escape.txt").exists()
        assert any("not a valid file name" in str(n.message) for n in app._notifications)


async def test_rename_and_delete_to_trash(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "README.md")
        await pilot.press("r")
        await answer_prompt(pilot, "READ.md")
        await finished(pilot)
        assert (workspace / "READ.md").read_text() == "# Sample\n\nA sample workspace.\n"
        assert not (workspace / "README.md").exists()
        await go_to(pilot, "READ.md")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await finished(pilot)
        assert not (workspace / "READ.md").exists()
        await undo(pilot)
        await undo(pilot)
        assert (workspace / "README.md").exists()


async def test_declined_delete_changes_nothing(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "README.md")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("n")
        await finished(pilot)
        assert (workspace / "README.md").exists()
        assert journals(workspace) == []
        [record], _ = read_audit(workspace)
        assert (record.action, record.origin, record.paths) == ("rejected", "files-pane", ("README.md",))


async def test_marks_across_directories_then_copy_and_move_here(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "README.md")
        await pilot.press("space")
        await enter_directory(pilot, "docs")
        await go_to(pilot, "guide.md")
        await pilot.press("space")
        pane = app.screen.query_one(FilesPane)
        assert pane.marks == {"README.md", "docs/guide.md"}
        assert "2 marked" in str(app.screen.query_one("#files-status").render())
        await pilot.press("backspace")
        await settle(pilot)
        await enter_directory(pilot, "src")
        await pilot.press("c")
        await finished(pilot)
        assert (workspace / "src" / "README.md").exists()
        assert (workspace / "src" / "guide.md").read_text() == "# Guide\n\nRead me.\n"
        assert (workspace / "README.md").exists()
        assert pane.marks == set()
        # Move: mark the copy, go up, move it back next to... a conflict, renamed.
        await go_to(pilot, "README.md")
        await pilot.press("space", "backspace")
        await settle(pilot)
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, ConflictScreen), "the conflict question")
        await pilot.press("r")
        await finished(pilot)
        assert (workspace / "README (1).md").exists()
        assert not (workspace / "src" / "README.md").exists()


async def test_conflict_apply_to_all_skip(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    (workspace / "docs" / "README.md").write_text("other\n")
    (workspace / "docs" / "data.bin").write_text("other\n")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        for name in ("README.md", "data.bin"):
            await go_to(pilot, name)
            await pilot.press("space")
        await enter_directory(pilot, "docs")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConflictScreen), "the conflict question")
        await pilot.press("a", "s")
        await finished(pilot)
        assert (workspace / "docs" / "README.md").read_text() == "other\n"
        assert journals(workspace) == []
        assert any("Nothing to do" in str(n.message) for n in app._notifications)


async def test_overwrite_keeps_the_old_target_in_the_trash(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    (workspace / "docs" / "README.md").write_text("other\n")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "README.md")
        await pilot.press("space")
        await enter_directory(pilot, "docs")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConflictScreen), "the conflict question")
        await pilot.press("o")
        await finished(pilot)
        assert (workspace / "docs" / "README.md").read_text().startswith("# Sample")
        await undo(pilot)
        assert (workspace / "docs" / "README.md").read_text() == "other\n"


async def test_edit_in_editor_is_an_undoable_plan(make_app, workspace: Path, editor) -> None:  # type: ignore[no-untyped-def]
    editor("path.write_text(path.read_text().replace('Read me', 'Edited'))")
    mode = stat.S_IMODE(os.stat(workspace / "docs" / "guide.md").st_mode)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await enter_directory(pilot, "docs")
        await pilot.press("e")
        await finished(pilot)
        assert (workspace / "docs" / "guide.md").read_text() == "# Guide\n\nEdited.\n"
        assert stat.S_IMODE(os.stat(workspace / "docs" / "guide.md").st_mode) == mode
        await undo(pilot)
        assert (workspace / "docs" / "guide.md").read_text() == "# Guide\n\nRead me.\n"


async def test_bulk_rename_in_editor_with_a_swap(make_app, workspace: Path, editor) -> None:  # type: ignore[no-untyped-def]
    (workspace / "docs" / "a.txt").write_text("a\n")
    (workspace / "docs" / "b.txt").write_text("b\n")
    editor(
        "lines = path.read_text().splitlines()\n"
        "swap = {'a.txt': 'b.txt', 'b.txt': 'a.txt', 'guide.md': 'GUIDE.md'}\n"
        "path.write_text('\\n'.join(swap[line] for line in lines) + '\\n')"
    )
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await enter_directory(pilot, "docs")
        await pilot.press("R")
        await finished(pilot)
        assert (workspace / "docs" / "a.txt").read_text() == "b\n"
        assert (workspace / "docs" / "b.txt").read_text() == "a\n"
        assert (workspace / "docs" / "GUIDE.md").exists()
        await undo(pilot)
        assert (workspace / "docs" / "a.txt").read_text() == "a\n"
        assert (workspace / "docs" / "guide.md").exists()


async def test_editor_failure_changes_nothing(make_app, workspace: Path, editor) -> None:  # type: ignore[no-untyped-def]
    editor("path.write_text('garbage'); sys.exit(1)")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "README.md")
        await pilot.press("e")
        await finished(pilot)
        assert (workspace / "README.md").read_text().startswith("# Sample")
        assert journals(workspace) == []


async def test_a_long_copy_is_all_or_nothing_when_cancelled(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    many = workspace / "many"
    many.mkdir()
    for index in range(400):
        (many / f"f{index:03d}.txt").write_text(str(index))
    (workspace / "target").mkdir()
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        pane = app.screen.query_one(FilesPane)
        pane.marks.update(f"many/f{index:03d}.txt" for index in range(400))
        await enter_directory(pilot, "target")
        # Started without waiting for it (a key press waits until the app is idle again).
        pane.action_transfer("copy")
        await wait_until(pilot, lambda: pane.applying, "the copy to start", timeout=20)
        await pilot.press("escape")
        await finished(pilot)
        copied = len(list((workspace / "target").iterdir()))
        assert copied in (0, 400)
        if copied == 0:
            assert any("cancelled" in str(n.message) for n in app._notifications)


async def test_opening_the_shell_rolls_back_an_interrupted_apply(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    before = tree(workspace)
    plan = {"version": 1, "steps": [{"op": "write", "path": f"f{i}.txt", "content": "x" * 1000} for i in range(300)]}
    (workspace.parent / "plan.json").write_text(json.dumps(plan))
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from engine.plans.model import load_plan; "
         "from engine.plans.apply import apply_plan; apply_plan(Path(sys.argv[1]), load_plan(sys.argv[2]))",
         str(workspace), str(workspace.parent / "plan.json")]
    )  # fmt: skip
    while child.poll() is None and not any(workspace.glob("f1*.txt")):
        time.sleep(0.001)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL, "the apply finished before it could be killed"
    assert [j.state for j in journals(workspace)] == ["applying"]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await wait_until(
            pilot, lambda: any("interrupted plan" in str(n.message) for n in app._notifications), "recovery"
        )
        assert tree(workspace) == before
        assert [j.state for j in journals(workspace)] == ["rolled-back"]


async def test_a_warning_of_the_apply_is_shown(make_app, workspace: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # An audit log that cannot be written was said nowhere: the pane kept only the step events.
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text("")
    (workspace / ".routeshell").mkdir(exist_ok=True)
    (workspace / ".routeshell" / "audit.jsonl").symlink_to(elsewhere)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await answer_prompt(pilot, "notes.txt")
        await finished(pilot)
        assert (workspace / "notes.txt").read_text() == ""
        warnings = [n for n in app._notifications if n.severity == "warning"]
        assert [n.title for n in warnings] == ["Warning"], [n.message for n in app._notifications]
        assert str(warnings[0].message).startswith("audit log not written: ")
    assert elsewhere.read_text() == ""
