from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from engine.workspace import listing
from engine.workspace.listing import Entry


def names(entries: list[Entry]) -> list[str]:
    return [entry.name for entry in entries]


def test_scan_puts_directories_first_then_sorts_case_insensitively(workspace: Path) -> None:
    (workspace / "Zeta.txt").write_text("z")
    (workspace / "alpha.txt").write_text("a")
    entries = listing.scan_directory(workspace, workspace)
    dirs = [entry.name for entry in entries if entry.is_dir]
    assert names(entries)[: len(dirs)] == dirs
    assert dirs == ["[red]x[", "docs", "outside-link", "src"]
    files = names(entries)[len(dirs) :]
    assert files == sorted(files, key=str.casefold)
    link = next(entry for entry in entries if entry.name == "outside-link")
    assert link.is_link
    assert link.is_dir


def test_scan_reports_progress(tmp_path: Path) -> None:
    for index in range(25):
        (tmp_path / f"f{index}").touch()
    seen: list[int] = []
    listing.scan_directory(tmp_path, tmp_path, progress=seen.append, progress_every=10)
    assert seen == [10, 20]


def test_scan_refuses_directories_outside_the_root(workspace: Path) -> None:
    with pytest.raises(listing.OutsideWorkspace):
        listing.scan_directory(workspace, workspace / "outside-link")
    with pytest.raises(listing.OutsideWorkspace):
        listing.scan_directory(workspace, workspace / "..")


def test_sibling_with_the_same_prefix_is_outside(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p-evil").mkdir()
    assert not listing.inside(tmp_path / "p", tmp_path / "p-evil")
    assert listing.inside(tmp_path / "p", tmp_path / "p")


def test_filter_hides_dotfiles_and_matches_substrings(workspace: Path) -> None:
    entries = listing.scan_directory(workspace, workspace)
    assert ".hidden" not in names(listing.filter_entries(entries))
    assert ".hidden" in names(listing.filter_entries(entries, show_hidden=True))
    assert names(listing.filter_entries(entries, text="READ")) == ["README.md"]
    assert names(listing.filter_entries(entries, text="hid", show_hidden=True)) == [".hidden"]


def test_preview_of_text(workspace: Path) -> None:
    preview = listing.read_preview(workspace, workspace / "src" / "pkg" / "hello.py")
    assert preview.text is not None
    assert preview.text.startswith("def hello")
    assert not preview.truncated


def test_preview_is_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("".join(f"line {i}\n" for i in range(100_000)))
    preview = listing.read_preview(tmp_path, big, max_bytes=1000, max_lines=50)
    assert preview.truncated
    assert preview.text is not None
    assert preview.text.count("\n") == 50
    assert "first 50 lines" in preview.note


def test_preview_counts_lines_at_newlines_only(tmp_path: Path) -> None:
    # Form feeds, \x85 and \u2028 are inside a line: str.splitlines() would cut the preview mid-line.
    lines = [f"page {i}\x0cmore\x85x\u2028y\x1cz\n" for i in range(10)]
    paged = tmp_path / "paged.txt"
    paged.write_text("".join(lines))
    preview = listing.read_preview(tmp_path, paged, max_bytes=10_000, max_lines=4)
    assert preview.truncated
    assert preview.text == "".join(lines[:4])
    assert preview.note.startswith("first 4 lines of ")


def test_preview_never_reads_binary_special_or_outside_files(workspace: Path) -> None:
    assert listing.read_preview(workspace, workspace / "data.bin").text is None
    outside = workspace / "passwd-link"
    outside.symlink_to("/etc/passwd")
    refused = listing.read_preview(workspace, outside)
    assert refused.text is None
    assert "outside the workspace" in refused.note


def test_preview_of_a_fifo_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result: list[listing.Preview] = []
    reader = threading.Thread(target=lambda: result.append(listing.read_preview(tmp_path, fifo)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert result, "read_preview blocked on a FIFO"
    assert result[0].text is None
    assert "FIFO" in result[0].note


def test_metadata_describes_symlinks_without_following(workspace: Path) -> None:
    meta = listing.metadata(workspace, workspace / "outside-link")
    assert meta.kind == "symlink"
    assert meta.link_target == "/etc"
    hello = listing.metadata(workspace, workspace / "src" / "pkg" / "hello.py")
    assert (hello.kind, hello.permissions, hello.mode) == ("file", 0o644, "-rw-r--r--")
