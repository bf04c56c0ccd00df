"""Find by meaning in the Files pane: the dialog searches in a worker, shows how far it got, and marks what it finds."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from textual.command import CommandPalette
from textual.widgets import Input, Static

from engine.semantic.search import load_embedder
from tests.tui.conftest import screen_text, settle, wait_until
from tui.screens.meaning_screen import MeaningScreen
from tui.widgets.files_pane import FilesPane

SIZE = (100, 30)
#: The model loads once per process; the first search in a test run waits for it.
SEARCH_S = 60.0


def notes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(str(note.title), str(note.message)) for note in app._notifications]


def status(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one("#meaning-status", Static).render())


async def open_dialog(pilot, query: str, top_k: str) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot)
    await pilot.press("M")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, MeaningScreen), "the find-by-meaning dialog")
    await pilot.press(*query)
    pilot.app.screen.query_one("#meaning-top-k", Input).value = top_k


async def test_the_closest_files_are_marked_and_index_warnings_are_one_escaped_line(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    # Junk where the index goes: the search still answers, from an index in memory.
    (workspace / ".routeshell" / "index.sqlite").mkdir(parents=True)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_dialog(pilot, "a python function that greets someone", "1")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, MeaningScreen), "the search", timeout=SEARCH_S)
        await settle(pilot)
        pane = app.screen.query_one(FilesPane)
        assert pane.marks == {"src/pkg/hello.py"}
        assert notes(app)[-1][1].startswith("Marked 1 file by meaning; the closest is src/pkg/hello.py (0.")
        warnings = [message for title, message in notes(app) if title == "File index"]
        assert len(warnings) == 1
        assert "index.sqlite is not a regular file" in warnings[0]
        assert "\n" not in warnings[0]
        assert "1 marked" in screen_text(app)


async def test_the_palette_opens_it_and_bad_fields_say_why_and_search_nothing(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*"find by meaning")
        await wait_until(pilot, lambda: "Files: find by meaning" in screen_text(app), "the command")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MeaningScreen), "the find-by-meaning dialog")
        await pilot.press("enter")
        await settle(pilot)
        assert "describe the files to find" in status(app)
        await pilot.press(*"notes")
        app.screen.query_one("#meaning-top-k", Input).value = "0"
        await pilot.press("enter")
        await settle(pilot)
        assert "keep: give a whole number from 1 to 1000" in status(app)
        assert isinstance(app.screen, MeaningScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, MeaningScreen)
        assert app.screen.query_one(FilesPane).marks == set()
    assert not (workspace / ".routeshell" / "index.sqlite").exists()


async def test_escape_stops_a_search_under_way_and_marks_nothing(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    load_embedder()  # loaded before the dialog opens, so that the search is embedding when Esc comes
    root = tmp_path / "many"
    root.mkdir()
    count = 192
    for n in range(count):
        (root / f"note-{n:03}.txt").write_text(f"note {n}: " + " ".join(f"word{n * k % 997}" for k in range(40)))
    app = make_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_dialog(pilot, "meeting notes", "20")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "embedding" in status(app), "the embedding to start", timeout=SEARCH_S)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, MeaningScreen)
        assert app.screen.query_one(FilesPane).marks == set()
    with closing(sqlite3.connect(root / ".routeshell" / "index.sqlite")) as conn:
        (stored,) = conn.execute("SELECT count(*) FROM files").fetchone()
    assert stored < count  # stopped between two batches; what it embedded is kept for the next search
    assert sorted(os.listdir(root / ".routeshell")) == ["index.sqlite", "reserve"]
