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
