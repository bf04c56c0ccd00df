"""What the Files pane asks about is what it applies: an entry a question names that changes
before the answer (edited, or replaced by another file) stops the operation, which touches nothing."""

from __future__ import annotations

import inspect
import io
import os
import tarfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input

from engine.plans.journal import journals
from tests.helpers import tree
from tests.tui.conftest import settle, wait_until
from tests.tui.test_file_operations import enter_directory, finished, go_to
from tui.screens.confirm_screen import ConfirmScreen
from tui.screens.conflict_screen import ConflictScreen
from tui.screens.keep_or_remove_screen import KeepOrRemoveScreen
from tui.screens.prompt_screen import PromptScreen
from tui.widgets.files_pane import FilesPane

#: A name that must reach the screen escaped.
NAME = "\x1b[31mnotes.txt"
ARCHIVE = "\x1b[31mpack.tar.gz"


def change_file(kind: str, target: Path) -> None:
    """Change the file ``target`` behind the pane's back: ``edited`` (other bytes, with its size and
    modification time put back) or ``replaced`` (another file renamed over it).

    Its source is also run by the test's $EDITOR, so it uses nothing but ``os`` and ``Path``.
    """
    if kind == "edited":
        info = target.stat()
        target.write_bytes(target.read_bytes().swapcase())
        os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    else:
        other = target.with_name(".another")
        other.write_bytes(b"another file\n")
        os.replace(other, target)


def notes(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(notification.message) for notification in app._notifications]


async def question(pilot: Pilot[int], screen: type[Screen[object]]) -> None:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, screen), f"the {screen.__name__}")
    await settle(pilot)


async def typed(pilot: Pilot[int], text: str) -> None:
    """Answer the prompt on screen with ``text``."""
    pilot.app.screen.query_one(Input).value = text
    await pilot.press("enter")


@dataclass(frozen=True)
class Operation:
    """Keys that open an operation's question, the question's screen, the file to change while it
    is open (workspace-relative), and how to say yes."""

    keys: tuple[str, ...]
    screen: type[Screen[object]]
    changed: str
    answer: Callable[[Pilot[int]], Awaitable[None]]
    marks: tuple[str, ...] = ()  # else the cursor is on NAME (or the archive, for extract)


async def yes(pilot: Pilot[int]) -> None:
    await pilot.press("y")


async def overwrite(pilot: Pilot[int]) -> None:
    await pilot.press("o")


async def rename_it(pilot: Pilot[int]) -> None:
    await typed(pilot, "renamed.txt")


async def tag_it(pilot: Pilot[int]) -> None:
    await typed(pilot, "+draft")


async def enter(pilot: Pilot[int]) -> None:
    await pilot.press("enter")


async def remove_originals(pilot: Pilot[int]) -> None:
    await pilot.press("r")


OPERATIONS = {
    "delete": Operation(("d",), ConfirmScreen, NAME, yes),
    # The copy would overwrite the file changed; the move would take the file changed.
    "copy": Operation(("c",), ConflictScreen, NAME, overwrite, marks=(f"sub/{NAME}",)),
    "move": Operation(("m",), ConflictScreen, f"sub/{NAME}", overwrite, marks=(f"sub/{NAME}",)),
    "rename": Operation(("r",), PromptScreen, NAME, rename_it),
    "tag": Operation(("t",), PromptScreen, NAME, tag_it),
    "archive": Operation(("a", "enter"), KeepOrRemoveScreen, NAME, remove_originals),
    "extract": Operation(("X",), PromptScreen, ARCHIVE, enter),
}


@pytest.fixture
def named(workspace: Path) -> Path:
    """The workspace with NAME at its top and in ``sub/``, and the archive ARCHIVE."""
    (workspace / NAME).write_text("the notes shown\n")
    (workspace / "sub").mkdir()
    (workspace / "sub" / NAME).write_text("the notes to copy\n")
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as archive:
        member = tarfile.TarInfo("inside.txt")
        member.size = 3
        archive.addfile(member, io.BytesIO(b"in\n"))
    (workspace / ARCHIVE).write_bytes(data.getvalue())
    return workspace


def refused(app, changed: str) -> None:  # type: ignore[no-untyped-def]
    shown = changed.replace("\x1b", "\\x1b")
    assert f"'{shown}' was changed since the question was asked; nothing was applied" in notes(app)
    assert "\x1b" not in "".join(notes(app))


@pytest.mark.parametrize("kind", ["edited", "replaced"])
@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
async def test_an_entry_changed_while_its_question_is_open_stops_the_operation(  # type: ignore[no-untyped-def]
    make_app, named: Path, operation: Operation, kind: str
) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        pane = app.screen.query_one(FilesPane)
        pane.marks.update(operation.marks)
        pane.refresh_marks()
        await go_to(pilot, ARCHIVE if operation.changed == ARCHIVE else NAME)
        await pilot.press(*operation.keys)
        await question(pilot, operation.screen)
        change_file(kind, named / operation.changed)
        before = tree(named)
        await operation.answer(pilot)
        await finished(pilot)
        refused(app, operation.changed)
        assert tree(named) == before
        assert journals(named) == []


@pytest.mark.parametrize("kind", ["edited", "replaced"])
async def test_a_file_changed_while_the_rename_list_is_edited_is_not_renamed(  # type: ignore[no-untyped-def]
    make_app, named: Path, editor, kind: str
) -> None:
    target = named / NAME
    editor(
        f"import os\n{inspect.getsource(change_file)}\nchange_file({kind!r}, Path({str(target)!r}))\n"
        "path.write_text(path.read_text().replace('notes.txt', 'renamed.txt'))"
    )
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        pane = app.screen.query_one(FilesPane)
        pane.marks.add(NAME)
        pane.refresh_marks()
        await settle(pilot)
        before = {path: value for path, value in tree(named).items() if path != NAME}
        await pilot.press("R")
        await finished(pilot)
        refused(app, NAME)
        assert target.exists()
        assert {path: value for path, value in tree(named).items() if path != NAME} == before
        assert journals(named) == []


async def test_a_sibling_changed_while_the_rename_list_is_edited_does_not_stop_it(  # type: ignore[no-untyped-def]
    make_app, named: Path, editor
) -> None:
    """The list names every entry of the directory, but only those renamed must be as they were."""
    sibling = named / "sub" / "other.txt"
    sibling.write_text("other\n")
    editor(
        f"import os\n{inspect.getsource(change_file)}\nchange_file('edited', Path({str(sibling)!r}))\n"
        "path.write_text(path.read_text().replace('notes.txt', 'renamed.txt'))"
    )
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await enter_directory(pilot, "sub")
        await pilot.press("R")
        await finished(pilot)
        assert (named / "sub" / "\x1b[31mrenamed.txt").read_text() == "the notes to copy\n"
        assert sibling.read_text() == "OTHER\n"
        assert len(journals(named)) == 1


@pytest.mark.parametrize("kind", ["edited", "replaced"])
async def test_an_entry_changed_while_the_undo_question_is_open_stops_the_undo(  # type: ignore[no-untyped-def]
    make_app, named: Path, kind: str
) -> None:
    """Undoing the archive moves it to the trash: not another file put in its place meanwhile."""
    archive = named / "\x1b[31mnotes.tar.gz"
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, NAME)
        await pilot.press("a")
        await question(pilot, PromptScreen)
        await typed(pilot, "\\x1b[31mnotes.tar.gz")
        await question(pilot, KeepOrRemoveScreen)
        await pilot.press("k")
        await finished(pilot)
        assert archive.exists()
        await pilot.press("u")
        await question(pilot, ConfirmScreen)
        change_file(kind, archive)
        before = tree(named)
        await pilot.press("y")
        await finished(pilot)
        refused(app, archive.name)
        assert tree(named) == before
        assert [journal.state for journal in journals(named)] == ["applied"]


async def test_a_chmod_while_the_delete_question_is_open_does_not_stop_it(  # type: ignore[no-untyped-def]
    make_app, named: Path
) -> None:
    """A chmod moves the change time, as an edit does, but leaves what the question showed as it was."""
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, NAME)
        await pilot.press("d")
        await question(pilot, ConfirmScreen)
        os.chmod(named / NAME, 0o600)
        await pilot.press("y")
        await finished(pilot)
        assert not (named / NAME).exists()
        assert len(journals(named)) == 1


async def test_a_directory_replaced_while_its_delete_question_is_open_is_not_deleted(  # type: ignore[no-untyped-def]
    make_app, named: Path
) -> None:
    assert (named / "docs").is_dir()
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "docs")
        await pilot.press("d")
        await question(pilot, ConfirmScreen)
        (named / "docs").rename(named / "docs.old")
        (named / "docs").mkdir()
        (named / "docs" / "new.txt").write_text("never shown\n")
        before = tree(named)
        await pilot.press("y")
        await finished(pilot)
        assert "'docs' was replaced by another directory since the question was asked; nothing was applied" in notes(
            app
        )
        assert tree(named) == before
        assert journals(named) == []
