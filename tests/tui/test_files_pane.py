"""The Files pane driven by Pilot, on a real temp workspace."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from textual.widgets import Input, Static

from engine.names import display_name
from tests.tui.conftest import screen_text, settle, wait_until
from tui.screens.confirm_screen import ConfirmScreen
from tui.screens.prompt_screen import PromptScreen
from tui.widgets.entry_list import EntryList
from tui.widgets.file_operations import typed_name
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


def preview_text(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one(FilePreview).query_one("#preview-body", Static).render())


async def go_to(pilot, name: str) -> None:  # type: ignore[no-untyped-def]
    pilot.app.screen.query_one(EntryList).cursor = visible_names(pilot.app).index(name)
    await settle(pilot)


async def until_idle(pilot) -> None:  # type: ignore[no-untyped-def]
    pane = pilot.app.screen.query_one(FilesPane)
    await wait_until(pilot, lambda: not pane.applying and not pilot.app.workers._workers, "the operation")
    await settle(pilot)


def make_non_utf8_file(directory: Path, data: bytes = b"bytes in a name\n") -> Path:
    """Create ``caf\\xe9.txt`` (Latin-1 bytes, not UTF-8) with ``os.open`` on the raw name."""
    raw = os.path.join(os.fsencode(directory), b"caf\xe9.txt")
    fd = os.open(raw, os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, data)
    os.close(fd)
    return Path(os.fsdecode(raw))


NON_UTF8 = "caf\udce9.txt"  # how Python carries the name: the byte 0xE9 as a surrogate


async def test_a_non_utf8_name_is_shown_escaped_and_previewed(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    make_non_utf8_file(workspace)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert NON_UTF8 in visible_names(app)
        await go_to(pilot, NON_UTF8)
        shown = screen_text(app)
        assert "caf\\xe9.txt" in shown
        assert "\udce9" not in shown
        assert "bytes in a name" in preview_text(app)
        assert "name caf\\xe9.txt" in static_text(app.screen.query_one(MetadataView))


async def test_deleting_a_non_utf8_name_never_ends_the_app(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    """Whatever the engine answers, the pane says it in one line and the app goes on."""
    path = make_non_utf8_file(workspace)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, NON_UTF8)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert "caf\\xe9.txt" in screen_text(app)
        await pilot.press("y")
        await until_idle(pilot)
        assert app.is_running
        assert app.return_code is None
        if path.exists():  # refused: the reason is one escaped line
            messages = [str(n.message) for n in app._notifications]
            assert messages
            assert all("\n" not in m and "\udce9" not in m for m in messages)
        # The pane still answers keys.
        await pilot.press("full_stop")
        await settle(pilot)
        assert ".hidden" in visible_names(app)


async def test_rename_copy_and_delete_a_non_utf8_name(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    make_non_utf8_file(workspace)
    raw = os.fsencode(workspace)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, NON_UTF8)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), "the prompt")
        field = app.screen.query_one(Input)
        # Offered as shown, and what is typed back is read the same way: \xe9 is the byte again.
        assert field.value == "caf\\xe9.txt"
        field.value = "caf\\xe9.md"
        await pilot.press("enter")
        await until_idle(pilot)
        assert os.listdir(raw).count(b"caf\xe9.md") == 1, [str(n.message) for n in app._notifications]
        assert b"caf\xe9.txt" not in os.listdir(raw)
        await go_to(pilot, "caf\udce9.md")
        await pilot.press("space")
        await go_to(pilot, "docs")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("c")
        await until_idle(pilot)
        with open(os.path.join(raw, b"docs", b"caf\xe9.md"), "rb") as copied:
            assert copied.read() == b"bytes in a name\n"
        await go_to(pilot, "caf\udce9.md")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await until_idle(pilot)
        assert b"caf\xe9.md" not in os.listdir(os.path.join(raw, b"docs"))
        assert app.is_running


async def test_a_preview_that_fails_shows_why_and_the_app_goes_on(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    """The workspace itself disappears under the pane (or, without root, a file becomes unreadable)."""
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await go_to(pilot, "README.md")
        assert "A sample workspace." in preview_text(app)
        locked = workspace / "docs" / "guide.md"
        locked.chmod(0)
        moved = workspace.with_name("ws-moved")
        readable = os.access(locked, os.R_OK)
        if readable:  # root reads anything: take the whole workspace away instead
            locked.chmod(0o644)
            workspace.rename(moved)
        try:
            if not readable:
                await go_to(pilot, "docs")
                await pilot.press("enter")
                await settle(pilot)
                await go_to(pilot, "guide.md")
            else:
                await go_to(pilot, "[bold]b.txt")
            text = preview_text(app)
            assert ("Permission denied" if not readable else "No such file or directory") in text
            assert len(text.strip().splitlines()) == 1
            assert app.is_running
            # Still usable: keys are handled and the next preview comes.
            await pilot.press("full_stop")
            await settle(pilot)
            assert app.screen.query_one(FilesPane).show_hidden
        finally:
            if moved.exists():
                moved.rename(workspace)
            if locked.exists():
                locked.chmod(0o644)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from("\\\udc80\udce9\udcff\ud800")))
def test_a_name_typed_back_as_shown_is_the_same_name(name: str) -> None:
    assert typed_name(display_name(name)) == name


def test_typed_names_keep_backslashes_that_escape_nothing() -> None:
    assert typed_name("a\\b.txt") == "a\\b.txt"
    assert typed_name("caf\\xe9.txt") == "caf\udce9.txt"
    assert typed_name("tab\\there\\") == "tab\there\\"
    assert typed_name(None) is None
