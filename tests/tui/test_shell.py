"""The shell window: pane switching, the help screen, the command palette and quitting."""

from __future__ import annotations

from textual.command import CommandList, CommandPalette
from textual.widgets import TabbedContent

from tests.tui.conftest import screen_text, settle, wait_until
from tui.screens.help_screen import HelpScreen
from tui.widgets.entry_list import EntryList
from tui.widgets.files_pane import FilesPane


def palette_offers(app, command: str) -> bool:  # type: ignore[no-untyped-def]
    """True when the command palette's highlighted option is ``command``."""
    options = app.screen.query_one(CommandList)
    index = options.highlighted
    return index is not None and command in str(options.get_option_at_index(index).prompt)


async def test_number_keys_switch_panes(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        tabs = app.screen.query_one(TabbedContent)
        assert tabs.active == "files"
        for key, pane, words in [
            ("1", "agent", "Type a task below and press Enter"),
            ("3", "train", "Fill in the form and press Start"),
            ("4", "serve", "Choose a model and press Start"),
        ]:
            # The Agent pane focuses its task input, where digits are text: Escape leaves it first.
            await pilot.press("escape", key)
            await settle(pilot)
            assert tabs.active == pane
            assert words in screen_text(app)
        await pilot.press("2")
        await settle(pilot)
        assert tabs.active == "files"
        assert isinstance(app.focused, EntryList)


async def test_help_lists_the_real_bindings_and_closes(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 60)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        shown = screen_text(app)
        for binding in FilesPane.BINDINGS:
            assert binding.tooltip in shown  # type: ignore[union-attr]
        assert "Quit routeshell" in shown
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, HelpScreen)
        assert isinstance(app.focused, EntryList)


async def test_command_palette_runs_a_shell_command(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"toggle hidden")
        await wait_until(pilot, lambda: palette_offers(app, "toggle hidden files"), "the palette to offer the command")
        await pilot.press("enter")
        await settle(pilot)
        assert ".hidden" in [entry.name for entry in app.screen.query_one(EntryList).entries]


async def test_command_palette_switches_panes(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"serve pane")
        await wait_until(pilot, lambda: palette_offers(app, "Show the Serve pane"), "the palette to offer the command")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.query_one(TabbedContent).active == "serve"


async def test_q_quits(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert not app.is_running


async def test_q_in_the_filter_is_typed_not_quit(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash", "q")
        await settle(pilot)
        assert app.is_running
        assert app.screen.query_one(FilesPane).filter_text == "q"


async def test_help_scrolls_with_the_keyboard(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        body = app.screen.query_one("#help-body")
        assert body.max_scroll_y > 0
        await pilot.press("pagedown")
        await settle(pilot)
        assert body.scroll_y > 0
