"""The Files pane driven by Pilot, on a real temp workspace."""

from __future__ import annotations

import os
from pathlib import Path

from textual.widgets import Input, Static

from tests.tui.conftest import screen_text, settle
from tui.widgets.entry_list import EntryList
from tui.widgets.file_preview import FilePreview, MetadataView
from tui.widgets.files_pane import FilesPane


def visible_names(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [entry.name for entry in app.screen.query_one(EntryList).entries]


def static_text(widget: Static) -> str:
    return str(widget.render())


async def test_lists_the_workspace_directories_first(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        # A symlink leading outside is not a directory here: where it leads is never looked at.
        assert visible_names(app) == [
            "[red]x[",
            "docs",
            "src",
            "[bold]b.txt",
            "data.bin",
            "esc\x1b[31mred",
            "new\nline.txt",
            "outside-link",
            "README.md",
        ]
        assert app.focused is app.screen.query_one(EntryList)
        assert "9 entries · 1 hidden" in static_text(app.screen.query_one("#files-status", Static))


async def test_enter_a_directory_preview_a_file_and_come_back(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("end")
        await pilot.press("up", "up", "up", "up", "up", "up")  # cursor on src/
        await settle(pilot)
        assert app.screen.query_one(EntryList).highlighted.name == "src"
        await pilot.press("enter")
        await settle(pilot)
        assert visible_names(app) == ["pkg"]
        assert static_text(app.screen.query_one("#files-path", Static)) == "ws/src/"
        await pilot.press("l")
        await settle(pilot)
        assert visible_names(app) == ["hello.py"]
        preview = app.screen.query_one(FilePreview).query_one("#preview-body", Static)
        body = preview.render()
        assert "def hello(name: str) -> str:" in str(body)
        # Highlighted: the preview carries more than one style.
        assert len({span.style for span in body.spans}) > 1  # type: ignore[union-attr]
        meta = static_text(app.screen.query_one(MetadataView))
        assert "file" in meta
        assert "-rw-r--r--" in meta
        assert "2023-11-14 22:13:20 UTC" in meta
        await pilot.press("backspace", "left")
        await settle(pilot)
        assert static_text(app.screen.query_one("#files-path", Static)) == "ws/"
        # Coming back up puts the cursor on the directory we left.
        assert app.screen.query_one(EntryList).highlighted.name == "src"
        await pilot.press("h")
        await settle(pilot)
        assert static_text(app.screen.query_one("#files-path", Static)) == "ws/"


async def test_hostile_names_are_shown_literally(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        shown = screen_text(app)
        assert "[red]x[/" in shown
        assert "[bold]b.txt" in shown
        assert "esc\\x1b[31mred" in shown
        assert "new\\nline.txt" in shown
        assert "\x1b" not in shown
        await pilot.press("enter")  # into "[red]x["
        await settle(pilot)
        shown = screen_text(app)
        assert "ws/[red]x[/" in shown
        assert "red].txt" in shown
        # The preview of a file holding markup shows the markup, not bold text.
        assert "[bold]not bold[/bold]" in shown


async def test_type_to_filter_and_clear(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press("R", "E", "A")
        await settle(pilot)
        assert visible_names(app) == ["README.md"]
        assert "filter 'REA': 1 shown" in static_text(app.screen.query_one("#files-status", Static))
        await pilot.press("enter")
        assert isinstance(app.focused, EntryList)
        assert visible_names(app) == ["README.md"]
        await pilot.press("escape")
        await settle(pilot)
        assert len(visible_names(app)) == 9
        assert not app.screen.query_one("#files-filter", Input).display


async def test_filter_with_no_match_shows_empty_list(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash", "z", "z", "z")
        await settle(pilot)
        assert visible_names(app) == []
        assert "(no entries)" in screen_text(app)


async def test_hidden_toggle(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert ".hidden" not in visible_names(app)
        await pilot.press("full_stop")
        await settle(pilot)
        assert ".hidden" in visible_names(app)
        await pilot.press("full_stop")
        await settle(pilot)
        assert ".hidden" not in visible_names(app)


async def test_symlink_out_of_the_workspace_is_not_followed(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        entries = app.screen.query_one(EntryList)
        entries.cursor = visible_names(app).index("outside-link")
        await settle(pilot)
        assert "not followed" in screen_text(app)
        assert "/etc" in static_text(app.screen.query_one(MetadataView))  # the target, described
        await pilot.press("enter")
        await settle(pilot)
        assert static_text(app.screen.query_one("#files-path", Static)) == "ws/"
        assert app.focused is app.screen.query_one(FilePreview)


async def test_binary_and_parent_of_root(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("backspace")  # at the root: nothing above it is reachable
        await settle(pilot)
        assert static_text(app.screen.query_one("#files-path", Static)) == "ws/"
        entries = app.screen.query_one(EntryList)
        entries.cursor = visible_names(app).index("data.bin")
        await settle(pilot)
        assert "binary file, 4 bytes" in screen_text(app)


async def test_unreadable_directory_reports_and_stays(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    locked = workspace / "docs"
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root reads anything: make the directory vanish instead
            locked.chmod(0o755)
            os.rename(locked, workspace / "gone")
        app = make_app()
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            pane = app.screen.query_one(FilesPane)
            pane.load("docs")
            await settle(pilot)
            assert static_text(app.screen.query_one("#files-path", Static)) == "ws/"
            assert any("Cannot open ws/docs/" in str(n.message) for n in app._notifications)
    finally:
        if locked.exists():
            locked.chmod(0o755)


async def test_hundred_thousand_entries_load_in_a_worker(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    big = tmp_path / "big"
    big.mkdir()
    for index in range(100_000):
        os.close(os.open(big / f"f{index:06d}", os.O_CREAT | os.O_WRONLY, 0o644))
    app = make_app(big)
    async with app.run_test(size=(80, 24)) as pilot:
        # The UI answers while the directory is read: a pane switch goes through at once.
        await pilot.press("1")
        assert app.screen.query_one("TabbedContent").active == "agent"
        await pilot.press("escape", "2")
        await settle(pilot)
        assert len(visible_names(app)) == 100_000
        await pilot.press("end")
        await settle(pilot)
        assert app.screen.query_one(EntryList).highlighted.name == "f099999"
        assert "f099999" in screen_text(app)
        assert "100,000 entries" in screen_text(app)
