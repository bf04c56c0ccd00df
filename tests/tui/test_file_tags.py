"""Tags and archives in the Files pane: t, T, a and X, each change a plan undone with u."""

from __future__ import annotations

import io
import os
import re
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from engine.plans.journal import journals
from tests.conftest import FIXED_MTIME
from tests.helpers import tree, without_xattrs
from tests.tui.conftest import screen_text, settle, wait_until
from tests.tui.test_file_operations import answer_prompt, finished, go_to, names, undo
from tests.tui.test_snapshots import check
from tui.screens.keep_or_remove_screen import KeepOrRemoveScreen
from tui.screens.prompt_screen import PromptScreen
from tui.widgets.file_tags import TagChange, TagChangeError, parse_tag_change, tag_plan
from tui.widgets.files_pane import FilesPane

XATTR = "user.xdg.tags"
NOTES = b"# Notes\n\nSome text.\n"


def xattrs(path: Path) -> dict[str, bytes]:
    return {key: os.getxattr(path, key) for key in os.listxattr(path)}


def messages(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(notification.message) for notification in app._notifications]


def path_bar(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one("#files-path").render())


async def mark(pilot, *entries: str) -> None:  # type: ignore[no-untyped-def]
    for name in entries:
        await go_to(pilot, name)
        await pilot.press("space")
    await settle(pilot)


async def tag(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("t")
    await answer_prompt(pilot, text)
    await finished(pilot)


@pytest.fixture
def two_files(workspace: Path) -> tuple[Path, Path]:
    """A Markdown file and a text file (that already carries an unrelated attribute) at the top."""
    notes, todo = workspace / "notes.md", workspace / "todo.txt"
    notes.write_bytes(NOTES)
    todo.write_bytes(b"buy milk\n")
    os.setxattr(todo, "user.comment", b"kept as it is")
    return notes, todo


async def test_tag_two_files_show_filter_and_undo(make_app, workspace: Path, two_files) -> None:  # type: ignore[no-untyped-def]
    notes, todo = two_files
    before = (notes.read_bytes(), xattrs(notes), todo.read_bytes(), xattrs(todo))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await mark(pilot, "notes.md", "todo.txt")
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), "the tag prompt")
        assert app.screen.question == "Tags for 2 files: +add -remove (e.g. +draft -old)"
        await answer_prompt(pilot, "+draft +project")
        await finished(pilot)
        assert notes.read_bytes() == b"---\ntags:\n  - draft\n  - project\n---\n" + NOTES
        assert xattrs(todo) == {"user.comment": b"kept as it is", XATTR: b"draft,project"}
        [journal] = journals(workspace)
        assert journal.meta["plan"]["goal"] == "tags of 2 files: +draft +project"
        assert journal.meta["via"] == "files-pane"

        await go_to(pilot, "todo.txt")
        assert "     tags draft, project" in screen_text(app)
        await go_to(pilot, "notes.md")
        assert "     tags draft, project" in screen_text(app)

        await pilot.press("T")
        await answer_prompt(pilot, "draft")
        assert names(app) == ["notes.md", "todo.txt"]
        assert path_bar(app) == "ws/  tag: draft"
        await pilot.press("escape")
        await settle(pilot)
        assert "docs" in names(app)
        assert path_bar(app) == "ws/"

        await undo(pilot)
        assert (notes.read_bytes(), xattrs(notes), todo.read_bytes(), xattrs(todo)) == before


async def test_untag_and_the_filter_follows_changes(make_app, two_files) -> None:  # type: ignore[no-untyped-def]
    notes, todo = two_files
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await mark(pilot, "notes.md", "todo.txt")
        await tag(pilot, "+a +b draft")
        await pilot.press("T")
        await answer_prompt(pilot, "a")
        assert names(app) == ["notes.md", "todo.txt"]
        await tag(pilot, "-a +c")
        assert notes.read_bytes() == b"---\ntags:\n  - b\n  - draft\n  - c\n---\n" + NOTES
        assert os.getxattr(todo, XATTR) == b"b,draft,c"
        # The list is read again after the plan: neither file carries "a" any more.
        await wait_until(pilot, lambda: names(app) == [], "the tag filter to follow the change")
        await pilot.press("T")
        await answer_prompt(pilot, "")
        assert "docs" in names(app)


async def test_bad_tags_and_directories_are_refused_in_one_line(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    before = tree(workspace)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        # Each message is read right after its action: a notification times out, and on a busy
        # machine the first may be gone by the time the last is shown.
        found: list[str] = []
        await go_to(pilot, "README.md")
        await tag(pilot, "+a,b")
        found += messages(app)
        await tag(pilot, "+x -x")
        found += messages(app)
        await go_to(pilot, "docs")
        await tag(pilot, "+x")
        found += messages(app)
        assert "Tags not changed: the tag a,b holds a comma" in found
        assert "Tags not changed: the tag x is both added and removed" in found
        assert "only files carry tags: docs is a directory; unmark it and try again" in found
        assert all("\n" not in message for message in found)
    assert tree(workspace) == before
    assert journals(workspace) == []


async def test_a_hostile_tag_is_shown_escaped(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    (workspace / "plain.txt").write_text("text\n")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "plain.txt")
        await tag(pilot, "+[b]x")
        assert os.getxattr(workspace / "plain.txt", XATTR) == b"[b]x"
        await go_to(pilot, "plain.txt")
        assert "     tags [b]x" in screen_text(app)
        await pilot.press("T")
        await answer_prompt(pilot, "[b]x")
        assert names(app) == ["plain.txt"]
        assert path_bar(app) == "ws/  tag: [b]x"
        assert "tag: [b]x" in screen_text(app)


async def test_archive_marked_files_removing_them_then_undo(make_app, workspace: Path, two_files) -> None:  # type: ignore[no-untyped-def]
    before = tree(workspace)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await mark(pilot, "notes.md", "todo.txt")
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), "the archive name")
        default = app.screen.value
        assert default == f"archive-{time.strftime('%Y%m%d')}.tar.gz"
        await answer_prompt(pilot, "bundle.tar.gz")
        await wait_until(pilot, lambda: isinstance(app.screen, KeepOrRemoveScreen), "keep or remove")
        assert "Also move the originals to the trash?" in app.screen.question
        await pilot.press("r")
        await finished(pilot)
        with tarfile.open(workspace / "bundle.tar.gz") as archive:
            assert sorted(archive.getnames()) == ["notes.md", "todo.txt"]
            assert archive.extractfile("notes.md").read() == NOTES  # type: ignore[union-attr]
        assert not (workspace / "notes.md").exists()
        assert not (workspace / "todo.txt").exists()
        assert app.screen.query_one(FilesPane).marks == set()
        assert "bundle.tar.gz" in names(app)
        await undo(pilot)
        assert tree(workspace) == before
        assert xattrs(workspace / "todo.txt") == {"user.comment": b"kept as it is"}


async def test_archive_name_must_have_a_known_suffix(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    before = tree(workspace)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "README.md")
        await pilot.press("a")
        await answer_prompt(pilot, "bundle.rar")
        await finished(pilot)
        assert "bundle.rar: name the archive .zip, .tar.gz or .tar.xz" in messages(app)
    assert tree(workspace) == before


async def test_archive_keeping_the_originals(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "docs")
        await pilot.press("a")
        await answer_prompt(pilot, "docs.zip")
        await wait_until(pilot, lambda: isinstance(app.screen, KeepOrRemoveScreen), "keep or remove")
        await pilot.press("k")
        await finished(pilot)
        with zipfile.ZipFile(workspace / "docs.zip") as archive:
            assert "docs/guide.md" in archive.namelist()
        assert (workspace / "docs" / "guide.md").exists()


async def test_extract_an_archive_into_a_new_directory(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(workspace / "pack.zip", "w") as archive:
        archive.writestr("a.txt", "alpha\n")
        archive.writestr("sub/b.txt", "beta\n")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "pack.zip")
        await pilot.press("X")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), "the target directory")
        assert app.screen.value == "pack"
        await answer_prompt(pilot, "pack")
        await finished(pilot)
        assert (workspace / "pack" / "a.txt").read_text() == "alpha\n"
        assert (workspace / "pack" / "sub" / "b.txt").read_text() == "beta\n"
        assert app.screen.query_one(FilesPane).entry_list.highlighted.name == "pack"
        await undo(pilot)
        assert not (workspace / "pack").exists()


async def test_extract_a_tar_xz(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    data = b"gamma\n"
    with tarfile.open(workspace / "logs.tar.xz", "w:xz") as archive:
        info = tarfile.TarInfo("c.log")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "logs.tar.xz")
        await pilot.press("X")
        await answer_prompt(pilot, "out")
        await finished(pilot)
    assert (workspace / "out" / "c.log").read_bytes() == data


async def test_a_zip_slip_archive_is_refused_and_nothing_changes(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(workspace / "evil.zip", "w") as archive:
        archive.writestr("../evil.txt", "escaped\n")
    before = tree(workspace)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "evil.zip")
        await pilot.press("X")
        await answer_prompt(pilot, "evil")
        await finished(pilot)
        [refusal] = [message for message in messages(app) if "evil.zip" in message]
        assert "../evil.txt" in refusal
        assert "\n" not in refusal
        assert "Traceback" not in refusal
    assert tree(workspace) == before
    assert not (workspace.parent / "evil.txt").exists()


async def test_extract_refuses_what_is_not_an_archive(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "README.md")
        await pilot.press("X")
        await settle(pilot)
        assert not isinstance(app.screen, PromptScreen)
        assert "README.md is not a .zip, .tar.gz or .tar.xz archive; X extracts those" in messages(app)


async def test_tags_on_a_filesystem_without_xattrs_are_one_line(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with without_xattrs(tmp_path / "ram") as root:
        (root / "plain.txt").write_text("text\n")
        app = make_app(root)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await go_to(pilot, "plain.txt")
            await tag(pilot, "+draft")
            [refusal] = [message for message in messages(app) if "extended attributes" in message]
            assert "does not support extended attributes" in refusal
            assert "\n" not in refusal
        assert (root / "plain.txt").read_text() == "text\n"


def test_parse_tag_change() -> None:
    assert parse_tag_change("+draft -old  idea +draft") == TagChange(("draft", "idea"), ("old",))
    assert str(parse_tag_change("-old +new")) == "+new -old"
    assert tag_plan(["a.txt"], TagChange((), ("old",)))["steps"] == [
        {"op": "untag", "paths": ["a.txt"], "tags": ["old"]}
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no tags"),
        ("+", "a lone '+'"),
        ("-#x", "starts with '#'"),
        ("+a -a", "both added and removed"),
        ("+\u202ex", "control or invisible"),
        ("+" + "x" * 65, "longer than 64"),
    ],
)
def test_parse_tag_change_refuses_in_one_line(text: str, reason: str) -> None:
    with pytest.raises(TagChangeError, match=re.escape(reason)) as caught:
        parse_tag_change(text)
    assert "\n" not in str(caught.value)


class TestTagSnapshots:
    def test_tag_prompt(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        check(snap_compare, make_app, ["down", "space", "down", "space", "t", "plus", "d", "r", "a", "f", "t"])

    def test_metadata_shows_tags(self, snap_compare, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        tagged = workspace / "tagged.txt"
        tagged.write_text("a file with tags\n")
        tagged.chmod(0o644)
        os.setxattr(tagged, XATTR, b"draft,[b]x,2024")
        os.utime(tagged, (FIXED_MTIME, FIXED_MTIME))
        check(snap_compare, make_app, ["end"])
