from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.workspace import listing
from engine.workspace.listing import Entry
from engine.workspace.sandbox import SandboxError, Workspace


@pytest.fixture
def ws(workspace: Path, resolution: str) -> Iterator[Workspace]:
    with Workspace(workspace) as opened:
        yield opened


def names(entries: list[Entry]) -> list[str]:
    return [entry.name for entry in entries]


def test_scan_puts_directories_first_then_sorts_case_insensitively(ws: Workspace) -> None:
    (ws.root / "Zeta.txt").write_text("z")
    (ws.root / "alpha.txt").write_text("a")
    entries = listing.scan_directory(ws, ".")
    dirs = [entry.name for entry in entries if entry.is_dir]
    assert names(entries)[: len(dirs)] == dirs
    assert dirs == ["[red]x[", "docs", "src"]
    files = names(entries)[len(dirs) :]
    assert files == sorted(files, key=str.casefold)
    # A symlink leading outside is described as a symlink; where it leads is never looked at.
    link = next(entry for entry in entries if entry.name == "outside-link")
    assert (link.is_link, link.is_dir, link.kind) == (True, False, "symlink")
    assert next(entry for entry in entries if entry.name == "data.bin").kind == "file"


def test_symlink_to_a_directory_inside_is_a_directory_with_openat2(ws: Workspace, resolution: str) -> None:
    (ws.root / "src-link").symlink_to("src")
    link = next(entry for entry in listing.scan_directory(ws, ".") if entry.name == "src-link")
    assert link.is_link
    # The component walk refuses every symlink, so there it is never a directory.
    assert link.is_dir == (resolution == "openat2")


def test_scan_reports_progress(tmp_path: Path) -> None:
    for index in range(25):
        (tmp_path / f"f{index}").touch()
    seen: list[int] = []
    with Workspace(tmp_path) as ws:
        listing.scan_directory(ws, ".", progress=seen.append, progress_every=10)
    assert seen == [10, 20]


def test_scan_refuses_directories_outside_the_root(ws: Workspace) -> None:
    with pytest.raises(SandboxError):
        listing.scan_directory(ws, "outside-link")
    with pytest.raises(SandboxError):
        listing.scan_directory(ws, "..")
    with pytest.raises(SandboxError):
        listing.count_entries(ws, "outside-link")


def test_sibling_with_the_same_prefix_is_outside(tmp_path: Path, resolution: str) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p-evil").mkdir()
    (tmp_path / "p-evil" / "x.txt").write_text("sibling\n")
    (tmp_path / "p" / "sibling").symlink_to("../p-evil")
    with Workspace(tmp_path / "p") as ws:
        with pytest.raises(SandboxError):
            listing.scan_directory(ws, "sibling")
        refused = listing.read_preview(ws, "sibling/x.txt")
        assert refused.text is None
        assert [entry.name for entry in listing.scan_directory(ws, ".")] == ["sibling"]


def test_filter_hides_dotfiles_and_matches_substrings(ws: Workspace) -> None:
    entries = listing.scan_directory(ws, ".")
    assert ".hidden" not in names(listing.filter_entries(entries))
    assert ".hidden" in names(listing.filter_entries(entries, show_hidden=True))
    assert names(listing.filter_entries(entries, text="READ")) == ["README.md"]
    assert names(listing.filter_entries(entries, text="hid", show_hidden=True)) == [".hidden"]


def test_preview_of_text(ws: Workspace) -> None:
    preview = listing.read_preview(ws, "src/pkg/hello.py")
    assert preview.text is not None
    assert preview.text.startswith("def hello")
    assert not preview.truncated


def test_preview_is_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("".join(f"line {i}\n" for i in range(100_000)))
    with Workspace(tmp_path) as ws:
        preview = listing.read_preview(ws, "big.txt", max_bytes=1000, max_lines=50)
    assert preview.truncated
    assert preview.text is not None
    assert preview.text.count("\n") == 50
    assert "first 50 lines" in preview.note


def test_preview_counts_lines_at_newlines_only(tmp_path: Path) -> None:
    # Form feeds, \x85 and \u2028 are inside a line: str.splitlines() would cut the preview mid-line.
    lines = [f"page {i}\x0cmore\x85x\u2028y\x1cz\n" for i in range(10)]
    (tmp_path / "paged.txt").write_text("".join(lines))
    with Workspace(tmp_path) as ws:
        preview = listing.read_preview(ws, "paged.txt", max_bytes=10_000, max_lines=4)
    assert preview.truncated
    assert preview.text == "".join(lines[:4])
    assert preview.note.startswith("first 4 lines of ")


def test_preview_never_reads_binary_special_or_outside_files(ws: Workspace, resolution: str) -> None:
    assert listing.read_preview(ws, "data.bin").text is None
    (ws.root / "passwd-link").symlink_to("/etc/passwd")
    (ws.root / "dots-link").symlink_to("../../../../../../etc/passwd")
    for name in ("passwd-link", "dots-link", "../ws/README.md", "/etc/passwd"):
        refused = listing.read_preview(ws, name)
        assert refused.text is None, name
    assert "outside the workspace" in listing.read_preview(ws, "passwd-link").note or resolution == "walk"
    assert "not followed" in listing.read_preview(ws, "passwd-link").note


def test_preview_of_a_fifo_does_not_hang(tmp_path: Path, resolution: str) -> None:
    os.mkfifo(tmp_path / "pipe")
    result: list[listing.Preview] = []
    with Workspace(tmp_path) as ws:
        reader = threading.Thread(target=lambda: result.append(listing.read_preview(ws, "pipe")), daemon=True)
        reader.start()
        reader.join(timeout=10)
        assert result, "read_preview blocked on a FIFO"
        assert result[0].text is None
        assert "FIFO" in result[0].note
        assert next(entry for entry in listing.scan_directory(ws, ".")).kind == "FIFO"


def test_metadata_describes_symlinks_without_following(ws: Workspace) -> None:
    meta = listing.metadata(ws, "outside-link")
    assert meta.kind == "symlink"
    assert meta.link_target == "/etc"
    hello = listing.metadata(ws, "src/pkg/hello.py")
    assert (hello.kind, hello.permissions, hello.mode) == ("file", 0o644, "-rw-r--r--")
    with pytest.raises(SandboxError):
        listing.metadata(ws, "outside-link/passwd")
    with pytest.raises(SandboxError):
        listing.metadata(ws, "missing.txt")


def test_non_utf8_names_are_listed_previewed_and_described(tmp_path: Path) -> None:
    os.close(os.open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"), os.O_CREAT | os.O_WRONLY, 0o644))
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"), "w") as out:
        out.write("bytes in a name\n")
    with Workspace(tmp_path) as ws:
        [entry] = listing.scan_directory(ws, ".")
        assert entry.name == "caf\udce9.txt"
        assert listing.read_preview(ws, entry.name).text == "bytes in a name\n"
        assert listing.metadata(ws, entry.name).kind == "file"
