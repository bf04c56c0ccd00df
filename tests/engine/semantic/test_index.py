"""The file index: incremental updates, the walk's rules, hostile names, and an index that cannot be used."""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from engine.files.match import regular_files
from engine.semantic import DIMENSIONS
from engine.semantic.index import (
    BATCH,
    INDEX_FILE,
    MAX_BROKEN,
    FileIndex,
    TextEmbedder,
    UpdateCounts,
    file_text,
    head_text,
)
from engine.semantic.search import rank
from engine.workspace.sandbox import Workspace
from tests.engine.semantic.library import LIBRARY, build_library
from tests.helpers import fill_disk, read_only_view, small_disk


class _Stop(Exception):
    pass


def update(root: Path, embedder: TextEmbedder, warnings: list[str] | None = None) -> UpdateCounts:
    """Update the whole index of ``root``; warnings go to ``warnings`` (the test fails on any when None)."""
    seen: list[str] = []
    with Workspace(root) as ws, closing(FileIndex.open(ws.root, seen.append)) as index:
        counts = index.update(ws, lambda: embedder)
    if warnings is None:
        assert seen == []
    else:
        warnings += seen
    return counts


def indexed(root: Path) -> set[str]:
    """The paths the index file holds a vector for."""
    with closing(sqlite3.connect(root / ".routeshell" / INDEX_FILE)) as conn:
        return {os.fsdecode(bytes(path)) for (path,) in conn.execute("SELECT path FROM files")}


def counts(added: int = 0, changed: int = 0, removed: int = 0, unchanged: int = 0) -> UpdateCounts:
    return UpdateCounts(added, changed, removed, unchanged)


def test_only_new_changed_and_vanished_files_are_touched(library: Path, embedder: TextEmbedder) -> None:
    assert update(library, embedder) == counts(added=5)
    assert indexed(library) == LIBRARY
    assert update(library, embedder) == counts(unchanged=5)
    info = os.stat(library / "notes.txt")
    os.utime(library / "notes.txt", ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))
    assert update(library, embedder) == counts(changed=1, unchanged=4)
    (library / "photos" / "beach.jpg").unlink()
    assert update(library, embedder) == counts(removed=1, unchanged=4)
    (library / "photos" / "mountain.jpg").write_bytes(b"\xff\xd8\xff\x00")
    assert update(library, embedder) == counts(added=1, unchanged=4)
    assert indexed(library) == LIBRARY - {"photos/beach.jpg"} | {"photos/mountain.jpg"}


def test_an_edit_that_keeps_the_size_and_puts_the_time_back_is_embedded_again(
    library: Path, embedder: TextEmbedder
) -> None:
    assert update(library, embedder) == counts(added=5)
    notes = library / "notes.txt"
    before = notes.stat()
    text = "Tax return 2024: file it by May 31.\n"
    assert len(text) == before.st_size
    notes.write_text(text)
    os.utime(notes, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (notes.stat().st_size, notes.stat().st_mtime_ns, notes.stat().st_ino) == (
        before.st_size, before.st_mtime_ns, before.st_ino)  # fmt: skip
    assert update(library, embedder) == counts(changed=1, unchanged=4)
    with Workspace(library) as ws, closing(FileIndex.open(ws.root, pytest.fail)) as index:
        stored = index.vectors(["notes.txt"])["notes.txt"]
        assert np.allclose(stored, embedder.vectors([file_text(ws, "notes.txt")])[0], atol=1e-5)
    # Ranked by what it says now: first for tax documents, past the tax return that is only a name.
    scores, _ = ranked(library)
    assert scores[0][0] == "notes.txt"


def test_a_stopped_update_keeps_what_it_embedded(tmp_path: Path, embedder: TextEmbedder) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for n in range(BATCH + 6):
        (root / f"note-{n:03}.txt").write_text(f"note number {n}\n")

    def stop_after_one_batch(stage: str, done: int, total: int) -> None:
        if stage == "embedding" and done >= BATCH:
            raise _Stop

    with Workspace(root) as ws, closing(FileIndex.open(ws.root, pytest.fail)) as index, pytest.raises(_Stop):
        index.update(ws, lambda: embedder, progress=stop_after_one_batch)
    assert len(indexed(root)) == BATCH
    assert update(root, embedder) == counts(added=6, unchanged=BATCH)


def test_links_git_and_special_files_are_never_indexed(tmp_path: Path, embedder: TextEmbedder) -> None:
    root = build_library(tmp_path / "ws")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret-tax-return.txt").write_text("tax return of someone else\n")
    (root / "tax-link.txt").symlink_to(outside / "secret-tax-return.txt")
    (root / "linked-outside").symlink_to(outside)
    (root / "linked-inside").symlink_to(root / "finance")
    (root / "dangling").symlink_to(root / "nowhere")
    for git in ("sub/.git", ".git", "deep/er/.GIT"):
        (root / git).mkdir(parents=True)
        (root / git / "config").write_text("[core] tax\n")
    os.mkfifo(root / "pipe")
    before = sorted(p.name for p in outside.iterdir())
    assert update(root, embedder) == counts(added=5)
    assert indexed(root) == LIBRARY
    assert sorted(p.name for p in outside.iterdir()) == before


def test_hostile_names_are_indexed_by_their_bytes(tmp_path: Path, embedder: TextEmbedder) -> None:
    root = tmp_path / "hostile"
    root.mkdir()
    names = [b"new\nline tax.txt", b"esc\x1b[31mred.txt", b"caf\xe9 invoice.txt", b"[red]budget [bold]x.md"]
    for name in names:
        with open(os.path.join(os.fsencode(root), name), "wb") as handle:
            handle.write(b"quarterly tax figures \x1b[2J\n")
    assert update(root, embedder) == counts(added=4)
    with closing(sqlite3.connect(root / ".routeshell" / INDEX_FILE)) as conn:
        assert sorted(bytes(path) for (path,) in conn.execute("SELECT path FROM files")) == sorted(names)
    assert update(root, embedder) == counts(unchanged=4)
    with Workspace(root) as ws:
        text = file_text(ws, os.fsdecode(b"caf\xe9 invoice.txt"))
    assert text == "caf\\xe9 invoice.txt\nquarterly tax figures \x1b[2J"


def test_a_file_dated_past_2262_is_indexed_and_found_unchanged(library: Path, embedder: TextEmbedder) -> None:
    # Its time in nanoseconds is past what SQLite holds in 64 bits: an OverflowError traceback.
    late = 15_000_000_000 * 10**9  # the year 2445
    os.utime(next(path for path in library.iterdir() if path.is_file()), ns=(late, late))
    assert update(library, embedder) == counts(added=5)
    assert update(library, embedder) == counts(unchanged=5)


def test_what_is_embedded_of_a_file_head() -> None:
    assert head_text(b"# Title\n\n  body\ttext\n") == "# Title body text"
    assert head_text(b"\x89PNG\r\n\x1a\n\x00\x00") == ""  # a NUL: binary
    assert head_text(b"caf\xe9 au lait, " * 3) == ""  # Latin-1, not UTF-8
    assert head_text("é".encode() * 2 + "é".encode()[:1]) == "éé"  # cut inside the last character


def test_a_file_that_is_not_a_database_is_moved_aside_and_rebuilt(library: Path, embedder: TextEmbedder) -> None:
    state = library / ".routeshell"
    state.mkdir()
    (state / INDEX_FILE).write_bytes(b"junk, not SQLite " * 512)
    warnings: list[str] = []
    assert update(library, embedder, warnings) == counts(added=5)
    assert len(warnings) == 1
    assert "was not a routeshell file index" in warnings[0]
    assert "index.sqlite.broken" in warnings[0]
    assert (state / "index.sqlite.broken").read_bytes().startswith(b"junk")
    assert update(library, embedder) == counts(unchanged=5)


def test_each_broken_index_is_kept_up_to_a_bound(library: Path, embedder: TextEmbedder) -> None:
    state = library / ".routeshell"
    state.mkdir()
    for n in range(1, MAX_BROKEN + 2):
        (state / INDEX_FILE).write_bytes(b"junk number %d " % n * 512)
        assert update(library, embedder, []) == counts(added=5)
    kept = sorted(p.name for p in state.iterdir() if ".broken" in p.name)
    assert kept == ["index.sqlite.broken", *[f"index.sqlite.broken.{n}" for n in range(2, MAX_BROKEN + 1)]]
    held = {(state / name).read_bytes()[:13] for name in kept}
    # The first was the oldest: the sixth took its place, and the others are all still there.
    assert held == {b"junk number %d" % n for n in range(2, MAX_BROKEN + 2)}


def test_a_directory_in_a_broken_index_s_place_is_never_replaced(library: Path, embedder: TextEmbedder) -> None:
    state = library / ".routeshell"
    state.mkdir()
    names = ["index.sqlite.broken", *[f"index.sqlite.broken.{n}" for n in range(2, MAX_BROKEN + 1)]]
    for name in names:
        (state / name).mkdir()
        (state / name / "mine.txt").write_text("mine")
    (state / INDEX_FILE).write_bytes(b"junk " * 512)
    warnings: list[str] = []
    assert update(library, embedder, warnings) == counts(added=5)
    # It said "[Errno 21] Is a directory: '...' -> '...'", each time; it says what to move.
    assert len(warnings) == 1, warnings
    assert "index.sqlite.broken to index.sqlite.broken.5, where a broken one is moved, are taken" in warnings[0]
    assert "Errno" not in warnings[0]
    assert all((state / name / "mine.txt").read_text() == "mine" for name in names)
    # With one of them a file, that one is replaced, and the directories stay.
    os.rename(state / names[2], library.parent / "moved")
    (state / names[2]).write_bytes(b"old junk")
    assert update(library, embedder, []) == counts(added=5)
    assert (state / names[2]).read_bytes().startswith(b"junk ")
    assert all((state / name / "mine.txt").read_text() == "mine" for name in names if name != names[2])


NOT_FINITE = np.full(DIMENSIONS, np.nan, dtype=np.float32).tobytes()
#: Finite, but no embedding: a dot product with one is no cosine, and these would rank first or last.
HUGE = np.full(DIMENSIONS, 1e30, dtype=np.float32).tobytes()
LONGER = np.full(DIMENSIONS, 2 / np.sqrt(DIMENSIONS), dtype=np.float32).tobytes()  # length 2
ZERO = np.zeros(DIMENSIONS, dtype=np.float32).tobytes()


def ranked(root: Path) -> tuple[list[tuple[str, float]], list[str]]:
    """The library ranked for one description (its index updated first), and the warnings of that."""
    with Workspace(root) as ws:
        ranking = rank(ws, "tax documents", list(regular_files(ws)))
    return ranking.scores, ranking.warnings


@pytest.mark.parametrize(
    ("damage", "values"),
    [
        ("size = 'big'", ()),
        ("mtime_ns = 1.5", ()),
        ("ctime_ns = 'changed'", ()),
        ("path = CAST(path AS TEXT)", ()),
        ("path = X'6e6f74657300'", ()),  # b"notes\0"
        ("vector = zeroblob(12)", ()),
        ("vector = 'not a vector'", ()),
        ("vector = ?", (NOT_FINITE,)),
        pytest.param("vector = ?", (HUGE,), id="huge-vector"),
        pytest.param("vector = ?", (LONGER,), id="vector-of-length-2"),
        pytest.param("vector = ?", (ZERO,), id="zero-vector"),
    ],
)
def test_an_index_holding_rows_it_could_not_have_written_is_moved_aside_and_rebuilt(
    library: Path, embedder: TextEmbedder, damage: str, values: tuple[bytes, ...]
) -> None:
    expected, _ = ranked(library)
    state = library / ".routeshell"
    with closing(sqlite3.connect(state / INDEX_FILE)) as conn, conn:
        conn.execute(f"UPDATE files SET {damage} WHERE path = (SELECT min(path) FROM files)", values)
    scores, warnings = ranked(library)
    assert scores == expected
    assert len(warnings) == 1, warnings
    assert "moved it to index.sqlite.broken and made a new one" in warnings[0]
    assert (state / "index.sqlite.broken").is_file()
    assert ranked(library) == (expected, [])


@pytest.mark.parametrize("damage", ["a table page where an index page is", "a vector going on past the end"])
def test_an_index_with_damaged_pages_is_moved_aside_and_rebuilt(library: Path, damage: str) -> None:
    expected, _ = ranked(library)
    index = library / ".routeshell" / INDEX_FILE
    with closing(sqlite3.connect(index)) as conn:
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'files'").fetchone()
        (size,) = conn.execute("PRAGMA page_size").fetchone()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
    with index.open("r+b") as handle:
        handle.seek((root - 1) * size)
        if damage == "a table page where an index page is":  # met as the stamps are read
            handle.write(b"\x0d\xff\xff\xff")
        else:  # a row whose vector goes on in a page past the end: met only as the vectors are read
            page = handle.read(size)
            last = pages.to_bytes(4, "big")  # the page the last row's vector goes on in
            assert page.count(last) == 1
            handle.seek((root - 1) * size + page.index(last))
            handle.write((pages + 90).to_bytes(4, "big"))
    scores, warnings = ranked(library)
    assert scores == expected
    assert len(warnings) == 1, warnings
    assert "index.sqlite is damaged (database disk image is malformed); moved it to index.sqlite.broken" in warnings[0]
    assert ranked(library) == (expected, [])


@pytest.mark.parametrize(
    ("odd", "said"),
    [
        ("symlink", "index.sqlite is not a regular file"),
        ("directory", "index.sqlite is not a regular file"),
        ("symlinked journal", "index.sqlite-journal is not a regular file"),
        ("hard link", "index.sqlite is a hard link (2 names for one file)"),
        ("symlinked state directory", ".routeshell is not a directory"),
    ],
)
def test_an_index_that_is_not_a_regular_file_is_never_used(
    tmp_path: Path, embedder: TextEmbedder, odd: str, said: str
) -> None:
    root = build_library(tmp_path / "ws")
    state = root / ".routeshell"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "index.sqlite"
    if odd == "symlinked state directory":
        state.symlink_to(elsewhere)
    else:
        state.mkdir()
    if odd == "symlink":
        (state / INDEX_FILE).symlink_to(target)
    elif odd == "directory":
        (state / INDEX_FILE).mkdir()
    elif odd == "symlinked journal":
        (state / f"{INDEX_FILE}-journal").symlink_to(target)
    elif odd == "hard link":
        target.touch()
        os.link(target, state / INDEX_FILE)
    warnings: list[str] = []
    assert update(root, embedder, warnings) == counts(added=5)
    assert len(warnings) == 1
    assert said in warnings[0]
    assert "kept in memory this time" in warnings[0]
    assert [(path.name, path.stat().st_size) for path in elsewhere.iterdir()] == (
        [("index.sqlite", 0)] if odd == "hard link" else []
    )  # nothing written through a link


def test_an_index_of_another_embedder_is_built_again(library: Path, embedder: TextEmbedder) -> None:
    assert update(library, embedder) == counts(added=5)
    with closing(sqlite3.connect(library / ".routeshell" / INDEX_FILE)) as conn, conn:
        conn.execute("UPDATE meta SET value = 'some-other-model' WHERE key = 'embedder'")
    assert update(library, embedder) == counts(added=5)
    assert update(library, embedder) == counts(unchanged=5)


def test_an_index_whose_tables_have_other_columns_is_built_again(library: Path, embedder: TextEmbedder) -> None:
    assert update(library, embedder) == counts(added=5)
    with closing(sqlite3.connect(library / ".routeshell" / INDEX_FILE)) as conn, conn:
        conn.execute("DROP TABLE files")
        conn.execute("CREATE TABLE files (path BLOB, size INTEGER)")
    assert update(library, embedder) == counts(added=5)
    assert update(library, embedder) == counts(unchanged=5)


@pytest.mark.parametrize(
    ("tables", "said"),
    [
        (["CREATE TABLE files (name TEXT, owner TEXT)"], "its tables are not those of a file index"),
        (["CREATE TABLE files (name TEXT, owner TEXT)", "CREATE TABLE customers (name TEXT)"], "it holds customers"),
    ],
)
def test_another_programs_database_is_moved_aside_unchanged(
    library: Path, embedder: TextEmbedder, tables: list[str], said: str
) -> None:
    state = library / ".routeshell"
    state.mkdir()
    with closing(sqlite3.connect(state / INDEX_FILE)) as conn, conn:
        for sql in tables:
            conn.execute(sql)
        conn.execute("INSERT INTO files VALUES ('report.doc', 'alice')")
    warnings: list[str] = []
    assert update(library, embedder, warnings) == counts(added=5)
    assert len(warnings) == 1
    assert f"was not a routeshell file index ({said}); moved it to index.sqlite.broken" in warnings[0]
    with closing(sqlite3.connect(state / "index.sqlite.broken")) as conn:
        assert conn.execute("SELECT name, owner FROM files").fetchall() == [("report.doc", "alice")]
    assert update(library, embedder) == counts(unchanged=5)


def test_two_updates_at_once_leave_a_sound_index(library: Path, embedder: TextEmbedder) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            update(library, embedder)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with closing(sqlite3.connect(library / ".routeshell" / INDEX_FILE)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert indexed(library) == LIBRARY
    assert update(library, embedder) == counts(unchanged=5)


def test_a_read_only_workspace_uses_its_index_and_embeds_in_memory(tmp_path: Path, embedder: TextEmbedder) -> None:
    source = build_library(tmp_path / "source")
    assert update(source, embedder) == counts(added=5)
    (source / "recipes" / "waffles.md").write_text("# Waffles\n")
    with read_only_view(source, tmp_path / "view") as view:
        warnings: list[str] = []
        assert update(view, embedder, warnings) == counts(added=1, unchanged=5)
        assert len(warnings) == 1
        assert "kept in memory this time" in warnings[0]
    assert indexed(source) == LIBRARY


def test_a_read_only_workspace_without_an_index_still_answers(tmp_path: Path, embedder: TextEmbedder) -> None:
    source = build_library(tmp_path / "source")
    with read_only_view(source, tmp_path / "view") as view:
        warnings: list[str] = []
        assert update(view, embedder, warnings) == counts(added=5)
        assert len(warnings) == 1
        assert "not writable" in warnings[0]
    assert not (source / ".routeshell").exists()


def test_a_full_disk_falls_back_to_memory(tmp_path: Path, embedder: TextEmbedder) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        root = build_library(disk / "ws")
        assert update(root, embedder) == counts(added=5)
        (root / "notes-2.txt").write_text("more notes\n")
        fill_disk(disk)
        warnings: list[str] = []
        assert update(root, embedder, warnings) == counts(added=1, unchanged=5)
        assert len(warnings) == 1
        assert "kept in memory this time" in warnings[0]
        assert "\n" not in warnings[0]
        assert indexed(root) == LIBRARY
