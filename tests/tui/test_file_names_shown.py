"""Names reach the Files pane's notifications and undo question escaped once, as the README shows
them (``\\xff``, ``\\x1b``, ``\\n``), and ``plan history`` shows the goal the same way."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import run_routeshell
from tests.tui.conftest import screen_text, settle, wait_until
from tests.tui.test_file_operations import answer_prompt, finished, go_to, undo
from tui.screens.confirm_screen import ConfirmScreen

BYTE_NAME = os.fsdecode(b"bad\xff.txt")


def messages(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(notification.message) for notification in app._notifications]


async def test_a_rename_and_its_undo_show_each_name_escaped_once(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    with open(os.path.join(os.fsencode(workspace), b"bad\xff.txt"), "wb") as made:
        made.write(b"x")
    goal = "rename bad\\xff.txt to t\\xe9\\x1b[31m\\nx.txt"
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, BYTE_NAME)
        await pilot.press("r")
        await answer_prompt(pilot, "t\\xe9\\x1b[31m\\nx.txt")
        await finished(pilot)
        assert os.path.exists(os.path.join(os.fsencode(workspace), b"t\xe9\x1b[31m\nx.txt"))
        assert any(message.startswith(f"{goal} (plan ") for message in messages(app)), messages(app)
        question = await undo(pilot)
        assert f"\n{goal}\nIt will:\n- move 't\\xe9\\x1b[31m\\nx.txt' back to 'bad\\xff.txt'" in question
        assert "\\\\" not in question
        assert any(message.endswith(f": {goal}") and message.startswith("Undid plan") for message in messages(app))
        assert os.path.exists(os.path.join(os.fsencode(workspace), b"bad\xff.txt"))
    history = run_routeshell("plan", "history", "--workspace", str(workspace))
    assert history.returncode == 0, history
    assert goal in history.stdout
    assert "\\\\" not in history.stdout


async def test_a_long_line_in_the_undo_question_is_wrapped_not_cut(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    typed = "title\\x1b]0;" + "P" * 90 + "-END.txt"
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await answer_prompt(pilot, typed)
        await finished(pilot)
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the undo question")
        await settle(pilot)
        # The dialog's rows, inside its border, read back as one text: every character is on screen.
        inside = app.screen.query_one(".dialog").content_region
        lines = screen_text(app).splitlines()[inside.y : inside.bottom]
        shown = "".join("".join(line[inside.x : inside.right].split()) for line in lines)
        assert "".join(f"- move '{typed}', which it created, to the trash".split()) in shown
        await pilot.press("n")
        await finished(pilot)


async def test_refusals_in_the_pane_name_each_file_escaped_once(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    raw_names = {b"bad\xff.txt": "bad\\xff.txt", b"esc\x1b[31m.txt": "esc\\x1b[31m.txt"}
    for raw in raw_names:
        with open(os.path.join(os.fsencode(workspace), raw), "wb") as made:
            made.write(b"mine\n")
    (workspace / "a.txt").write_text("a\n")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        for shown in raw_names.values():
            # A rename onto a name that is taken: the step is refused, naming both files.
            await go_to(pilot, "a.txt")
            await pilot.press("r")
            await answer_prompt(pilot, shown)
            await finished(pilot)
            said = f"step 1 (move 'a.txt' to '{shown}') failed: '{shown}' already exists; nothing was changed"
            assert said in messages(app), messages(app)
        # A name taken again since a plan moved the file away: undo is refused, naming it.
        await go_to(pilot, BYTE_NAME)
        await pilot.press("r")
        await answer_prompt(pilot, "moved.txt")
        await finished(pilot)
        with open(os.path.join(os.fsencode(workspace), b"bad\xff.txt"), "wb") as made:
            made.write(b"made again\n")
        await pilot.press("u")
        await finished(pilot)
        said = "'bad\\xff.txt' exists again, so 'moved.txt' cannot be moved back"
        assert any(message.startswith("Plan ") and said in message for message in messages(app)), messages(app)
    assert all("\\udc" not in message and "\x1b" not in message for message in messages(app)), messages(app)
