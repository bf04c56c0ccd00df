"""Editing a file with e in the Files pane: the bytes nobody edited stay as they were, and a change
made to the file while the editor was open is never overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.plans.journal import journals
from tests.helpers import run_routeshell
from tests.tui.conftest import settle
from tests.tui.test_file_operations import finished, go_to, names, undo
from tui.widgets.entry_list import EntryList


def messages(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(notification.message) for notification in app._notifications]


async def edit(make_app, name: str) -> object:  # type: ignore[no-untyped-def]
    """Open the shell, press e on ``name`` at the top of the workspace; return the app once it is done."""
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, name)
        await pilot.press("e")
        await finished(pilot)
    return app


@pytest.mark.parametrize(
    "content",
    [b"a\r\nb\r\n", b"one\rtwo\rthree", b"\xef\xbb\xbfbom\r\nand crlf\n\r", b"mixed\r\nends\nhere\r"],
    ids=["crlf", "lone-cr", "bom", "mixed"],
)
async def test_an_edit_that_changes_nothing_makes_no_plan(make_app, workspace: Path, editor, content: bytes) -> None:  # type: ignore[no-untyped-def]
    (workspace / "crlf.txt").write_bytes(content)
    editor("pass")
    app = await edit(make_app, "crlf.txt")
    assert (workspace / "crlf.txt").read_bytes() == content
    assert journals(workspace) == []
    assert "crlf.txt was not changed" in messages(app)


async def test_an_edit_changes_only_the_bytes_edited(make_app, workspace: Path, editor) -> None:  # type: ignore[no-untyped-def]
    content = b"\xef\xbb\xbfa\r\nb\r\nlone\rcr\n"
    (workspace / "crlf.txt").write_bytes(content)
    editor("path.write_bytes(path.read_bytes().replace(b'b', b'B'))")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "crlf.txt")
        await pilot.press("e")
        await finished(pilot)
        assert (workspace / "crlf.txt").read_bytes() == b"\xef\xbb\xbfa\r\nB\r\nlone\rcr\n"
        await undo(pilot)
        assert (workspace / "crlf.txt").read_bytes() == content


async def test_a_file_that_is_not_utf8_is_not_edited(make_app, workspace: Path, editor) -> None:  # type: ignore[no-untyped-def]
    (workspace / "latin1.txt").write_bytes(b"caf\xe9\r\n")
    editor("path.write_bytes(b'replaced')")
    app = await edit(make_app, "latin1.txt")
    assert (workspace / "latin1.txt").read_bytes() == b"caf\xe9\r\n"
    assert journals(workspace) == []
    assert any("latin1.txt is not UTF-8 text (byte 0xe9 at offset 3)" in message for message in messages(app))


async def test_a_change_made_while_the_editor_is_open_is_kept_and_so_is_the_edit(  # type: ignore[no-untyped-def]
    make_app, workspace: Path, editor
) -> None:
    notes = workspace / "notes.txt"
    notes.write_bytes(b"first\r\n")
    # While the person edits the copy, something else appends to the real file.
    editor(
        f"with open({str(notes)!r}, 'ab') as real:\n"
        "    real.write(b'appended meanwhile\\r\\n')\n"
        "path.write_bytes(path.read_bytes() + b'typed in the editor\\r\\n')"
    )
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "notes.txt")
        await pilot.press("e")
        await finished(pilot)
        assert notes.read_bytes() == b"first\r\nappended meanwhile\r\n"
        kept = workspace / "notes (edited).txt"
        assert kept.read_bytes() == b"first\r\ntyped in the editor\r\n"
        [said] = [message for message in messages(app) if "changed while it was being edited" in message]
        assert said.startswith("notes.txt changed while it was being edited, so the edit was not applied to it; ")
        assert "it is kept in notes (edited).txt (plan " in said
        assert "\n" not in said
        assert app.screen.query_one(EntryList).highlighted.name == "notes (edited).txt"
        # The edit was refused under the workspace lock before its journal was started, so plan history
        # holds no failed edit; keeping it is its own plan.
        assert [(journal.state, journal.meta["plan"]["goal"]) for journal in journals(workspace)] == [
            ("applied", "keep the edit of notes.txt as notes (edited).txt"),
        ]
        history = run_routeshell("plan", "history", "--workspace", str(workspace))
        assert [line.split("  ")[-1] for line in history.stdout.splitlines()] == [
            "keep the edit of notes.txt as notes (edited).txt"
        ]
        # A second time, the name beside it is taken: the next free one is used.
        await go_to(pilot, "notes.txt")
        await pilot.press("e")
        await finished(pilot)
        assert (workspace / "notes (edited) (1).txt").read_bytes() == (
            b"first\r\nappended meanwhile\r\ntyped in the editor\r\n"
        )
        assert "notes (edited) (1).txt" in names(app)
        assert notes.read_bytes() == b"first\r\nappended meanwhile\r\nappended meanwhile\r\n"
