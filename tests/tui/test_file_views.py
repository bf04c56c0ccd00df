"""The Files pane's views over the workspace: duplicate files (D) and directory sizes (S)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.screen import ModalScreen
from textual.widgets import OptionList

from tests.conftest import FIXED_MTIME
from tests.tui.conftest import screen_text, settle, wait_until
from tui.screens.confirm_screen import ConfirmScreen
from tui.screens.duplicates_screen import MAX_ROWS, DuplicateFile, DuplicateGroup, DuplicatesScreen
from tui.screens.main_screen import MainScreen
from tui.screens.sizes_screen import DirectorySize, SizesScreen, Usage, size_bar
from tui.sizes import size_text
from tui.widgets.files_pane import FilesPane

SIZE = (100, 30)
HOUR = 3600


def write(root: Path, path: str, content: str | bytes, mtime: float = FIXED_MTIME) -> Path:
    """Write ``content`` at ``root/path`` (making its directories) with the modification time ``mtime``."""
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)
    os.utime(target, (mtime, mtime))
    return target


def add_duplicates(root: Path) -> None:
    """Two groups: three copies of a 3 KB file and two of a short one, with distinct times."""
    big = "x" * 3072
    write(root, "docs/big-old.dat", big, FIXED_MTIME - 2 * HOUR)
    write(root, "big-new.dat", big, FIXED_MTIME)
    write(root, "src/big-mid.dat", big, FIXED_MTIME - HOUR)
    write(root, "notes.txt", "same words\n", FIXED_MTIME - HOUR)
    write(root, "src/pkg/notes copy.txt", "same words\n", FIXED_MTIME)
    for directory in (root, root / "docs", root / "src", root / "src" / "pkg"):
        os.utime(directory, (FIXED_MTIME, FIXED_MTIME))


def add_sized_directories(root: Path) -> None:
    write(root, "big/a.bin", b"\0" * 40_000)
    write(root, "big/inner/b.bin", b"\0" * 20_000)
    write(root, "mid/c.bin", b"\0" * 9_000)
    write(root, "small/d.txt", "tiny\n")
    for directory in (root, root / "big", root / "big" / "inner", root / "mid", root / "small"):
        os.utime(directory, (FIXED_MTIME, FIXED_MTIME))


def pane_of(pilot: Pilot[int]) -> FilesPane:
    [main] = [screen for screen in pilot.app.screen_stack if isinstance(screen, MainScreen)]
    return main.query_one(FilesPane)


async def open_view(pilot: Pilot[int], key: str, kind: type[ModalScreen[Any]]) -> None:
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, kind), f"the {kind.__name__}")
    await settle(pilot)


async def highlight(pilot: Pilot[int], row: int) -> None:
    pilot.app.screen.query_one(OptionList).highlighted = row
    await pilot.pause()


def row_of(screen: DuplicatesScreen | SizesScreen, path: str) -> int:
    return [getattr(row, "path", row) for row in screen._rows].index(path)


class TestDuplicatesView:
    async def test_groups_newest_first_then_mark_delete_and_undo(self, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        add_duplicates(workspace)
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await open_view(pilot, "D", DuplicatesScreen)
            screen = app.screen
            assert isinstance(screen, DuplicatesScreen)
            assert screen.groups is not None
            assert [[file.path for file in group.files] for group in screen.groups] == [
                ["big-new.dat", "src/big-mid.dat", "docs/big-old.dat"],
                ["src/pkg/notes copy.txt", "notes.txt"],
            ]
            text = screen_text(app)
            assert "2 groups of duplicates, 6.0 KB wasted" in text
            assert "3 files of 3.0 KB, 6.0 KB wasted" in text
            assert "2 files of 11 B, 11 B wasted" in text
            assert "2023-11-14 22:13  big-new.dat" in text
            assert text.index("big-new.dat") < text.index("src/big-mid.dat") < text.index("docs/big-old.dat")

            await pilot.press("k")
            await settle(pilot)
            assert not isinstance(app.screen, DuplicatesScreen)
            pane = pane_of(pilot)
            assert pane.marks == {"src/big-mid.dat", "docs/big-old.dat", "notes.txt"}
            assert any(str(n.message) == "Marked 3 duplicates; d moves them to the trash" for n in app._notifications)
            assert "3 marked" in str(pane.query_one("#files-status").render())

            await pilot.press("d")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            assert "3 marked entries" in app.screen.question
            await pilot.press("y")
            await wait_until(pilot, lambda: not pane.applying and not (workspace / "notes.txt").exists(), "the delete")
            await settle(pilot)
            assert not (workspace / "src" / "big-mid.dat").exists()
            assert not (workspace / "docs" / "big-old.dat").exists()
            assert (workspace / "big-new.dat").exists()
            assert (workspace / "src" / "pkg" / "notes copy.txt").exists()
            assert pane.marks == set()

            await pilot.press("u")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the undo question")
            await pilot.press("y")
            await wait_until(pilot, lambda: (workspace / "notes.txt").exists(), "the undo")
            await settle(pilot)
            assert (workspace / "src" / "big-mid.dat").read_text() == "x" * 3072
            assert (workspace / "docs" / "big-old.dat").exists()

    async def test_enter_goes_to_the_file(self, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        add_duplicates(workspace)
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await open_view(pilot, "D", DuplicatesScreen)
            assert isinstance(app.screen, DuplicatesScreen)
            await highlight(pilot, row_of(app.screen, "src/pkg/notes copy.txt"))
            await pilot.press("enter")
            await settle(pilot)
            pane = pane_of(pilot)
            assert not isinstance(app.screen, DuplicatesScreen)
            assert pane.directory == "src/pkg"
            highlighted = pane.entry_list.highlighted
            assert highlighted is not None
            assert highlighted.name == "notes copy.txt"
            assert pane.entry_list.has_focus

    async def test_enter_on_a_dotfile_shows_hidden_files_and_clears_the_filter(self, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        write(workspace, "docs/.hidden", "a dotfile\n")  # the sample's ".hidden" holds the same
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("slash", "x", "enter")
            await settle(pilot)
            await open_view(pilot, "D", DuplicatesScreen)
            assert isinstance(app.screen, DuplicatesScreen)
            await highlight(pilot, row_of(app.screen, ".hidden"))
            await pilot.press("enter")
            await settle(pilot)
            pane = pane_of(pilot)
            assert pane.show_hidden
            assert pane.filter_text == ""
            highlighted = pane.entry_list.highlighted
            assert highlighted is not None
            assert highlighted.name == ".hidden"

    async def test_a_header_row_is_not_a_file(self, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        add_duplicates(workspace)
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await open_view(pilot, "D", DuplicatesScreen)
            listing = app.screen.query_one(OptionList)
            assert listing.highlighted == 1  # the first file, below its group's header
            listing.highlighted = 0
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, DuplicatesScreen)
            await pilot.press("escape")
            await settle(pilot)
            assert not isinstance(app.screen, DuplicatesScreen)
            assert pane_of(pilot).marks == set()

    async def test_hostile_names_are_shown_escaped(self, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        # The sample workspace holds "esc\x1b[31mred" ("an escape in a name\n"): two more copies.
        write(workspace, "[red]x[red]", "an escape in a name\n")
        write(workspace, "dup\x1b[31m.txt", "an escape in a name\n")
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await open_view(pilot, "D", DuplicatesScreen)
            text = screen_text(app)
            assert "[red]x[red]" in text
            assert "dup\\x1b[31m.txt" in text
            assert "esc\\x1b[31mred" in text
            assert "\x1b" not in text

    async def test_a_fifo_does_not_hang_the_view(self, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        os.mkfifo(workspace / "pipe")
        os.mkfifo(workspace / "docs" / "pipe")
        write(workspace, "one.txt", "twin\n")
        write(workspace, "docs/two.txt", "twin\n")
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("D")
            await wait_until(pilot, lambda: getattr(app.screen, "groups", None) is not None, "the duplicates")
            screen = app.screen
            assert isinstance(screen, DuplicatesScreen)
            assert screen.groups is not None
            assert [[file.path for file in group.files] for group in screen.groups] == [["docs/two.txt", "one.txt"]]

    async def test_no_duplicates(self, make_app) -> None:  # type: ignore[no-untyped-def]
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await open_view(pilot, "D", DuplicatesScreen)
            assert "No duplicate files" in screen_text(app)
            await pilot.press("k")
            await settle(pilot)
            assert isinstance(app.screen, DuplicatesScreen)
            assert pane_of(pilot).marks == set()

    async def test_escape_stops_the_search(self, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        for number in range(3000):
            write(workspace, f"many/{number:04}.txt", f"{number:04}\n")
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("D", "escape")
            await settle(pilot)
            assert not isinstance(app.screen, DuplicatesScreen)
            assert not [worker for worker in app.workers if worker.group == "duplicates"]
            await pilot.press("D")
            await wait_until(pilot, lambda: getattr(app.screen, "groups", None) == [], "the second search")

    async def test_ten_thousand_groups_list_at_most_500_rows(self, make_app) -> None:  # type: ignore[no-untyped-def]
        groups = [
            DuplicateGroup(100, (DuplicateFile(f"d{n}/new", FIXED_MTIME), DuplicateFile(f"d{n}/old", FIXED_MTIME - 1)))
            for n in range(10_000)
        ]
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await open_view(pilot, "D", DuplicatesScreen)
            screen = app.screen
            assert isinstance(screen, DuplicatesScreen)
            screen.post_message(DuplicatesScreen.Found(groups, wasted=1_000_000, truncated=False))
            await settle(pilot)
            listing = screen.query_one(OptionList)
            assert listing.option_count == MAX_ROWS + 1
            last = listing.get_option_at_index(MAX_ROWS).prompt
            assert str(last) == f"and {20_000 - 333:,} more files"
            await pilot.press("end", "k")
            await settle(pilot)
            assert len(pane_of(pilot).marks) == 10_000


class TestSizesView:
    async def test_largest_first_and_enter_opens(self, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        add_sized_directories(workspace)
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await open_view(pilot, "S", SizesScreen)
            screen = app.screen
            assert isinstance(screen, SizesScreen)
            assert screen.usage is not None
            assert [row.path for row in screen.usage.dirs][:4] == ["big", "mid", "src", "[red]x["]
            assert screen.usage.dirs[0] == DirectorySize("big", 60_000, 2)
            text = screen_text(app)
            assert text.index("big/") < text.index("mid/") < text.index("small/")
            assert "█████████████████▍░░   58.6 KB         2 files  big/" in text
            assert "██▋░░░░░░░░░░░░░░░░░    8.8 KB         1 file   mid/" in text
            assert f"total {size_text(screen.usage.total)} in {screen.usage.files} files" in text
            await highlight(pilot, row_of(screen, "mid"))
            await pilot.press("enter")
            await settle(pilot)
            pane = pane_of(pilot)
            assert not isinstance(app.screen, SizesScreen)
            assert pane.directory == "mid"
            assert [entry.name for entry in pane.entry_list.entries] == ["c.bin"]

    async def test_depth_and_a_subdirectory(self, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        add_sized_directories(workspace)
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await open_view(pilot, "S", SizesScreen)
            screen = app.screen
            assert isinstance(screen, SizesScreen)
            assert screen.usage is not None
            assert "big/inner" not in [row.path for row in screen.usage.dirs]
            await pilot.press("plus")
            await settle(pilot)
            assert screen.depth == 2
            assert screen.usage is not None
            assert [row.path for row in screen.usage.dirs][:3] == ["big", "big/inner", "mid"]
            assert "src/pkg" in [row.path for row in screen.usage.dirs]
            await pilot.press("plus", "plus", "plus")
            await settle(pilot)
            assert screen.depth == 4
            await pilot.press("minus", "minus", "minus", "minus")
            await settle(pilot)
            assert screen.depth == 1
            assert screen.usage is not None
            assert screen.usage.depth == 1
            await highlight(pilot, row_of(screen, "big"))
            await pilot.press("enter")
            await settle(pilot)
            # From inside big/, the view lists its own directories, named from there.
            await open_view(pilot, "S", SizesScreen)
            inner = app.screen
            assert isinstance(inner, SizesScreen)
            assert inner.usage is not None
            assert [row.path for row in inner.usage.dirs] == ["big/inner"]
            assert "inner/" in screen_text(app)
            assert "big/inner" not in screen_text(app)
            await pilot.press("enter")
            await settle(pilot)
            assert pane_of(pilot).directory == "big/inner"

    async def test_ten_thousand_directories_and_unreadable_ones(self, make_app) -> None:  # type: ignore[no-untyped-def]
        usage = Usage(
            path=".",
            depth=1,
            total=10_000 * 1024,
            files=10_000,
            dirs=[DirectorySize(f"d{n:05}", 1024, 1) for n in range(10_000)],
            unreadable=[f"locked{n}" for n in range(12)],
            truncated=False,
        )
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await open_view(pilot, "S", SizesScreen)
            screen = app.screen
            assert isinstance(screen, SizesScreen)
            screen.post_message(SizesScreen.Measured(usage))
            await settle(pilot)
            listing = screen.query_one(OptionList)
            assert listing.option_count == 500 + 2
            assert str(listing.get_option_at_index(500).prompt) == "and 9,500 more"
            unreadable = str(listing.get_option_at_index(501).prompt)
            assert unreadable.startswith("cannot read (counted as 0): locked0/, locked1/,")
            assert unreadable.endswith("locked9/ and 2 more")

    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads a directory whatever its mode")
    async def test_an_unreadable_directory_is_named_at_the_end(self, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        (workspace / "locked").mkdir()
        (workspace / "locked").chmod(0)
        try:
            app = make_app()
            async with app.run_test(size=SIZE) as pilot:
                await settle(pilot)
                await open_view(pilot, "S", SizesScreen)
                assert "cannot read (counted as 0): locked/" in screen_text(app)
        finally:
            (workspace / "locked").chmod(0o755)

    def test_size_bar(self) -> None:
        assert size_bar(0, 100, 4) == ""
        assert size_bar(100, 100, 4) == "████"
        assert size_bar(50, 100, 4) == "██"
        assert size_bar(1, 8 * 4, 4) == "▏"
        assert size_bar(5, 0, 4) == ""


def keys(*presses: str) -> Callable[[Pilot[int]], Awaitable[None]]:
    async def script(pilot: Pilot[int]) -> None:
        await settle(pilot)
        for key in presses:
            await pilot.press(key)
            await settle(pilot)
        await pilot.pause()

    return script


class TestFileViewSnapshots:
    def test_duplicates_view(self, snap_compare, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        add_duplicates(workspace)
        write(workspace, "[red]x[red]", "an escape in a name\n")
        os.utime(workspace, (FIXED_MTIME, FIXED_MTIME))
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=keys("D"))

    def test_sizes_view(self, snap_compare, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        add_sized_directories(workspace)
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=keys("S", "plus"))
