"""Select by pattern, rename by pattern and classify in the Files pane, with their live previews."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Static, TextArea

from engine.plans.journal import history, journals
from tests.tui.conftest import screen_text, settle, wait_until
from tui.screens.classify_screen import ClassifyScreen, parse_rule_lines
from tui.screens.confirm_screen import ConfirmScreen
from tui.screens.rename_screen import RenameScreen
from tui.screens.select_screen import SelectScreen, count_matches
from tui.widgets.files_pane import FilesPane

SIZE = (100, 30)
README = "# Sample\n\nA sample workspace.\n"


def notes(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(notification.message) for notification in app._notifications]


async def finished(pilot) -> None:  # type: ignore[no-untyped-def]
    """Wait until the dialog's plan has been applied (or refused) and the pane has reloaded."""
    pane = pilot.app.screen.query_one(FilesPane)
    await wait_until(pilot, lambda: not pane.applying and not pilot.app.workers._workers, "the operation")
    await settle(pilot)


async def undo(pilot) -> str:  # type: ignore[no-untyped-def]
    """Press u, say yes to the question; return the question."""
    await pilot.press("u")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the undo question")
    question = str(pilot.app.screen.question)
    await pilot.press("y")
    await finished(pilot)
    return question


async def mark(pilot, *paths: str) -> FilesPane:  # type: ignore[no-untyped-def]
    pane = pilot.app.screen.query_one(FilesPane)
    pane.marks.update(paths)
    pane.refresh_marks()
    await settle(pilot)
    return pane


async def test_select_by_pattern_counts_live_and_marks_exactly_the_matches(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    (workspace / "docs" / "notes.md").write_text("notes\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, SelectScreen)
        assert "10 files match" in screen_text(app)
        await pilot.press(*"**/*.md")  # the glob is selected when the dialog opens: typing replaces it
        await settle(pilot)
        assert "3 files match" in screen_text(app)
        await pilot.press("tab", *"docs/g*")  # exclude
        await settle(pilot)
        assert "2 files match" in screen_text(app)
        await pilot.press("enter")
        await settle(pilot)
        pane = app.screen.query_one(FilesPane)
        assert pane.marks == {"README.md", "docs/notes.md"}
        assert "Marked 2 entries" in notes(app)
        assert "2 marked" in screen_text(app)
        assert journals(workspace) == []


async def test_a_bad_size_says_why_in_one_line_and_enter_marks_nothing(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        app.screen.query_one("#select-larger_than", Input).focus()
        await pilot.press(*"huge")
        await settle(pilot)
        count = app.screen.query_one("#select-count", Static)
        assert str(count.content) == "larger than: 'huge' is not a size; write it like 10B, 512KB, 1.5MB or 2GB"
        assert count.has_class("-problem")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SelectScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.query_one(FilesPane).marks == set()


def test_a_pattern_through_a_symlinked_directory_marks_nothing_and_names_the_symlink(tmp_path: Path) -> None:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "sub" / "f.txt").write_text("f\n")
    (tmp_path / "link").symlink_to("docs")
    for glob in ("link/sub/*", "link/*"):
        counted = count_matches(tmp_path, {"glob": glob, "type": "any"})
        assert counted.paths is None
        assert counted.problem
        assert counted.line == (
            "glob: 'link' is a symlink: a match never goes through one (a link is an entry, never a way in);"
            " glob the directory it leads to"
        )
    assert count_matches(tmp_path, {"glob": "docs/sub/*"}).paths == ["docs/sub/f.txt"]


async def test_more_matches_than_can_be_marked_are_refused(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    many = workspace / "many"
    many.mkdir()
    for number in range(10_001):
        (many / f"{number:05}.log").touch()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s", *"many/*")
        await settle(pilot)
        assert "more than 10,000 match; narrow the pattern to mark them" in screen_text(app)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SelectScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.query_one(FilesPane).marks == set()


async def test_rename_by_template_is_a_plan_in_history_and_undo_restores(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await mark(pilot, "README.md", "docs/guide.md")
        await pilot.press("w")
        await settle(pilot)
        assert isinstance(app.screen, RenameScreen)
        await pilot.press(*"{stem}-{n:02}{ext}")
        await settle(pilot)
        shown = screen_text(app)
        assert "README.md → README-01.md" in shown
        assert "docs/guide.md → docs/guide-02.md" in shown
        assert "2 files to rename" in shown
        await pilot.press("enter")
        await finished(pilot)
        assert (workspace / "README-01.md").read_text() == README
        assert (workspace / "docs" / "guide-02.md").exists()
        assert not (workspace / "README.md").exists()
        [row] = history(workspace)
        assert (row.goal, row.state, row.via, row.steps) == ("rename 2 files", "applied", "files-pane", 2)
        assert journals(workspace)[0].meta["plan"]["expanded_from"] == ["rename"]
        assert pane.marks == {"README-01.md", "docs/guide-02.md"}
        question = await undo(pilot)
        assert question.startswith(f"Undo plan {row.id}?\nrename 2 files\n")
        assert (workspace / "README.md").read_text() == README
        assert (workspace / "docs" / "guide.md").exists()
        assert not (workspace / "README-01.md").exists()
        assert [r.state for r in history(workspace)] == ["undone"]


async def test_rename_by_regex(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    (workspace / "a.txt").write_text("A\n")
    (workspace / "b.txt").write_text("B\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, "a.txt", "b.txt")
        await pilot.press("w")
        await settle(pilot)
        await pilot.click("#rename-by-regex")
        await settle(pilot)
        assert not app.screen.query_one("#rename-template", Input).display
        app.screen.query_one("#rename-find", Input).focus()
        await pilot.press(*"^([ab])", "tab", *r"\1x")
        await settle(pilot)
        assert "a.txt → ax.txt" in screen_text(app)
        await pilot.press("enter")
        await finished(pilot)
        assert (workspace / "ax.txt").read_text() == "A\n"
        assert (workspace / "bx.txt").read_text() == "B\n"


async def test_a_chain_of_renames_previews_only_where_each_file_ends_up(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    (workspace / "2.txt").write_text("two\n")
    (workspace / "3.txt").write_text("three\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, "2.txt", "3.txt")
        await pilot.press("w", *"{n}.txt")
        await settle(pilot)
        # 3.txt becomes 2.txt while 2.txt becomes 1.txt: both go through a temporary name first.
        rows = str(app.screen.query_one("#preview-rows", Static).content)
        assert rows.splitlines() == ["2.txt → 1.txt", "3.txt → 2.txt"]
        await pilot.press("enter")
        await finished(pilot)
        assert (workspace / "1.txt").read_text() == "two\n"
        assert (workspace / "2.txt").read_text() == "three\n"
        assert not (workspace / "3.txt").exists()


async def test_a_conflicting_template_names_both_paths_and_applies_nothing(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, "[bold]b.txt", "new\nline.txt")
        await pilot.press("w", *"x{ext}")
        await settle(pilot)
        assert r"'[bold]b.txt' and 'new\nline.txt' would both become 'x.txt'" in screen_text(app)
        assert app.screen.query_one("#preview-rows", Static).has_class("-problem")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RenameScreen)
        await pilot.press("escape")
        await finished(pilot)
        assert journals(workspace) == []
        assert (workspace / "[bold]b.txt").exists()
        assert not (workspace / "x.txt").exists()


async def test_classify_moves_each_file_by_its_first_rule_and_undo_restores(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    (workspace / "a.png").write_bytes(b"\x89PNG")
    (workspace / "invoice.png").write_text("invoice 7\n")  # the ext rule comes first
    (workspace / "bill.txt").write_text("INVOICE 42\n")
    (workspace / "notes.txt").write_text("hello\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("C")
        await settle(pilot)
        assert isinstance(app.screen, ClassifyScreen)
        app.screen.query_one(TextArea).load_text("ext .png,.jpg -> images\ncontains invoice -> invoices\n")
        await settle(pilot)
        rows = str(app.screen.query_one("#preview-rows", Static).content)
        assert "a.png → images/a.png" in rows
        assert "invoice.png → images/invoice.png" in rows
        assert "bill.txt → invoices/bill.txt" in rows
        assert "notes.txt stays" in rows
        assert "outside-link" not in rows  # files only: a symlink is not classified
        await pilot.press("ctrl+s")
        await finished(pilot)
        assert (workspace / "images" / "invoice.png").read_text() == "invoice 7\n"
        assert (workspace / "images" / "a.png").exists()
        assert (workspace / "invoices" / "bill.txt").read_text() == "INVOICE 42\n"
        assert (workspace / "notes.txt").exists()
        [row] = history(workspace)
        assert (row.goal, row.state) == ("classify 9 files", "applied")
        await undo(pilot)
        assert (workspace / "invoice.png").read_text() == "invoice 7\n"
        assert (workspace / "bill.txt").exists()
        assert not (workspace / "images").exists()
        assert not (workspace / "invoices").exists()


async def test_classify_rules_with_errors_name_their_lines(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("C")
        await settle(pilot)
        app.screen.query_one(TextArea).load_text("# rules\nregex ( -> broken\nsize 1MB -> big\next .png\n")
        await settle(pilot)
        shown = screen_text(app)
        assert "line 3: 'size' is not a rule; start the line with contains, regex, ext, glob, default" in shown
        assert "line 4: no '-> DIR' at the end; write it like 'ext .png,.jpg -> images'" in shown
        app.screen.query_one(TextArea).load_text("ext .md -> docs\nregex ( -> broken\n")
        await settle(pilot)
        assert "line 2: '(' is not a valid regular expression" in screen_text(app)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ClassifyScreen)


def test_rule_lines_parse_into_schema_rules() -> None:
    parsed = parse_rule_lines("ext .png, jpg -> img\n\n# skip\ndefault -> other\nglob a -> b -> c\n")
    assert parsed.rules == [
        {"ext": [".png", "jpg"], "to": "img"},
        {"default": True, "to": "other"},
        {"glob": "a -> b", "to": "c"},
    ]
    assert parsed.lines == [1, 4, 5]
    assert parse_rule_lines("default x -> y\ncontains -> z\nglob x ->").errors == [
        "line 1: a default rule takes every file; write it as 'default -> DIR'",
        "line 2: contains needs the text to look for before '->'",
        "line 3: give the directory the files go to after '->'",
    ]


async def test_hostile_names_show_escaped_in_the_previews(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    (workspace / "[red]x[red]").write_text("markup\n")
    hostile = ["esc\x1b[31mred", "new\nline.txt", "[red]x[red]"]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, *hostile)
        await pilot.press("w", *"{name}.bak")
        await settle(pilot)
        shown = screen_text(app)
        assert r"esc\x1b[31mred → esc\x1b[31mred.bak" in shown
        assert r"new\nline.txt → new\nline.txt.bak" in shown
        assert "[red]x[red] → [red]x[red].bak" in shown
        assert "\x1b" not in shown
        await pilot.press("escape")
        await finished(pilot)
        await pilot.press("C")
        await settle(pilot)
        app.screen.query_one(TextArea).load_text("contains escape -> esc\n")
        await settle(pilot)
        rows = str(app.screen.query_one("#preview-rows", Static).content)
        assert rows.splitlines() == [
            r"[red]x[red] stays",
            r"esc\x1b[31mred → esc/esc\x1b[31mred",
            r"new\nline.txt stays",
        ]
        assert "[red]x[red] stays" in screen_text(app)


async def test_a_long_preview_shows_200_rows_then_how_many_more(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    batch = workspace / "batch"
    batch.mkdir()
    for number in range(250):
        (batch / f"{number:03}.txt").touch()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s", *"batch/*", "enter")
        await settle(pilot)
        await pilot.press("w", *"log-{name}")
        await settle(pilot)
        rows = str(app.screen.query_one("#preview-rows", Static).content).splitlines()
        assert len(rows) == 201
        assert rows[0] == "batch/000.txt → batch/log-000.txt"
        assert rows[-1] == "… and 50 more"
        await pilot.press("enter")
        await finished(pilot)
        assert len(list(batch.glob("log-*.txt"))) == 250
        assert app.screen.query_one(FilesPane).marks == {f"batch/log-{n:03}.txt" for n in range(250)}


# -- snapshots ----------------------------------------------------------------------------------


def keys(*presses: str, marks: tuple[str, ...] = ()) -> Callable[[Pilot[int]], Awaitable[None]]:
    """A run_before script: let the first scan finish, mark ``marks``, press the keys, let their work finish."""

    async def script(pilot: Pilot[int]) -> None:
        await settle(pilot)
        if marks:
            await mark(pilot, *marks)
        for key in presses:
            await pilot.press(key)
            await settle(pilot)
        # A dialog's field takes the focus after it is mounted, and a loaded machine can take the
        # picture before that: the cursor is drawn only in a focused field, so wait for it.
        fields = [*pilot.app.screen.query(Input), *pilot.app.screen.query(TextArea)]
        if fields:
            await wait_until(pilot, lambda: pilot.app.screen.focused in fields, "a dialog's field to take the focus")
        # A focused input's cursor blinks: hold it on, or the picture depends on when it is taken.
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        for area in pilot.app.screen.query(TextArea):
            area.cursor_blink = False
        await pilot.pause()

    return script


class TestSelectionDialogs:
    def test_select_dialog_with_a_count(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=keys("s", *"**/*.md"))

    def test_rename_preview_with_a_conflict(self, snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
        presses = keys("w", *"x{ext}", marks=("[bold]b.txt", "new\nline.txt", "README.md"))
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=presses)

    def test_classify_preview(self, snap_compare, make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
        (workspace / "photo.png").write_bytes(b"\x89PNG")
        (workspace / "bill.txt").write_text("Invoice 42\n")
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=keys("C"))


async def test_a_file_edited_after_the_rename_preview_stops_the_apply(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    hostile = workspace / "\x1b[31mred.txt"
    hostile.write_text("before\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, hostile.name, "README.md")
        await pilot.press("w", *"{n}-{name}")
        await settle(pilot)
        assert "2 files to rename" in screen_text(app)
        # Edited while the preview is on screen, its size and modification time put back.
        times = hostile.stat()
        hostile.write_text("edited\n")
        os.utime(hostile, ns=(times.st_atime_ns, times.st_mtime_ns))
        await pilot.press("enter")
        await finished(pilot)
        refusal = "'\\x1b[31mred.txt' was changed since the preview; nothing was applied"
        assert refusal in notes(app)
        assert "\x1b" not in "".join(notes(app))
        assert hostile.read_text() == "edited\n"
        assert (workspace / "README.md").read_text() == README
        assert journals(workspace) == []


async def test_a_file_edited_after_the_classify_preview_stops_the_apply(make_app, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    (workspace / "a.png").write_bytes(b"\x89PNG")
    (workspace / "bill.txt").write_text("invoice 42\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, "a.png", "bill.txt")
        await pilot.press("C")
        await settle(pilot)
        app.screen.query_one(TextArea).load_text("ext .png -> images\ncontains invoice -> invoices\n")
        await settle(pilot)
        assert "bill.txt → invoices/bill.txt" in str(app.screen.query_one("#preview-rows", Static).content)
        (workspace / "bill.txt").write_text("a letter\n")  # it no longer matches the rule shown
        await pilot.press("ctrl+s")
        await finished(pilot)
        assert "'bill.txt' was changed since the preview; nothing was applied" in notes(app)
        assert (workspace / "bill.txt").read_text() == "a letter\n"
        assert (workspace / "a.png").exists()
        assert not (workspace / "images").exists()
        assert journals(workspace) == []
