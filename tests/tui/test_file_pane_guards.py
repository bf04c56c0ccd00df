"""The Files pane under a hurried user: keys during an apply, the palette over a dialog, undo and marks."""

from __future__ import annotations

from pathlib import Path

from engine.plans.journal import journals
from tests.tui.conftest import settle, wait_until
from tests.tui.test_file_operations import answer_prompt, enter_directory, finished, go_to, undo
from tui.screens.confirm_screen import ConfirmScreen
from tui.screens.conflict_screen import ConflictScreen
from tui.screens.main_screen import MainScreen
from tui.widgets.files_pane import FilesPane


async def test_file_keys_wait_while_a_plan_applies_and_esc_still_cancels(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    many = workspace / "many"
    many.mkdir()
    for index in range(900):
        (many / f"f{index:03d}.txt").write_text(str(index) * 5000)
    (workspace / "target").mkdir()
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        pane = app.screen.query_one(FilesPane)
        pane.marks.update(f"many/f{index:03d}.txt" for index in range(900))
        await go_to(pilot, "target")
        await pilot.press("enter")
        await settle(pilot)
        pane.action_transfer("copy")
        await wait_until(pilot, lambda: pane.applying, "the copy to start", timeout=20)
        pressed_while_applying = 0
        for key in ("u", "s", "d", "w", "t", "C", "a", "D"):
            if not pane.applying:
                break
            pressed_while_applying += 1
            await pilot.press(key)
            assert isinstance(app.screen, MainScreen), key  # no dialog opened over the apply
        assert pressed_while_applying
        if pane.applying:
            await pilot.press("escape")  # still the pane's to cancel: no key detached it
        await finished(pilot)
        assert len(list((workspace / "target").iterdir())) in (0, 900)
        assert any("cancelled" in str(n.message).lower() or "plan" in str(n.message) for n in app._notifications)


async def test_a_palette_command_over_an_open_dialog_does_not_crash(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("S")
        await wait_until(pilot, lambda: not isinstance(app.screen, MainScreen), "the sizes view")
        app.run_files_action("duplicates")
        app.run_agent_action("clear")
        await settle(pilot)
        assert app.is_running
        assert any("Close the open dialog first" in str(n.message) for n in app._notifications)


async def test_undo_drops_marks_on_paths_it_moved_away(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    (workspace / "a.txt").write_text("a")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        pane = app.screen.query_one(FilesPane)
        from engine.plans.apply import apply_plan
        from engine.plans.model import normalise

        apply_plan(workspace, normalise({"version": 1, "steps": [{"op": "move", "from": "a.txt", "to": "b.txt"}]}))
        pane.marks.update({"b.txt", "README.md"})
        pane.action_reload()
        await settle(pilot)
        await undo(pilot)
        assert pane.marks == {"README.md"}


async def test_deleting_a_marked_directory_and_a_marked_file_in_it(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    (workspace / "d").mkdir()
    (workspace / "d" / "a.txt").write_text("a")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        pane = app.screen.query_one(FilesPane)
        pane.marks.update({"d", "d/a.txt"})
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await finished(pilot)
        assert not (workspace / "d").exists()
        assert len(journals(workspace)) == 1


async def test_a_new_file_in_a_symlinked_directory_says_why_it_is_refused(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    (workspace / "real").mkdir()
    (workspace / "link_in").symlink_to("real")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "link_in")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("n")
        await answer_prompt(pilot, "new.txt")
        await finished(pilot)
        [said] = [str(n.message) for n in app._notifications if "link_in" in str(n.message)]
        assert "'link_in' is a symlink: nothing is made in a directory through the symlink that names it" in said
        assert "not a directory" not in said
        assert "\n" not in said
        assert list((workspace / "real").iterdir()) == []


async def test_copying_into_a_symlinked_directory_asks_nothing_and_says_why(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    (workspace / "real" / "sub").mkdir(parents=True)
    (workspace / "real" / "sub" / "README.md").write_text("theirs\n")
    (workspace / "link_in").symlink_to("real")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "README.md")
        await pilot.press("space")
        await enter_directory(pilot, "link_in")
        await enter_directory(pilot, "sub")
        await pilot.press("c")
        said = lambda: [str(n.message) for n in app._notifications if "link_in" in str(n.message)]  # noqa: E731
        await wait_until(pilot, lambda: bool(said()) or isinstance(app.screen, ConflictScreen), "the copy's answer")
        assert not isinstance(app.screen, ConflictScreen)  # nothing to ask about: nothing is copied there
        await finished(pilot)
        [message] = said()
        assert "'link_in' is a symlink: nothing is made in a directory through the symlink that names it" in message
        assert "\n" not in message
        assert (workspace / "real" / "sub" / "README.md").read_text() == "theirs\n"
        assert sorted(p.name for p in (workspace / "real" / "sub").iterdir()) == ["README.md"]
        assert journals(workspace) == []
