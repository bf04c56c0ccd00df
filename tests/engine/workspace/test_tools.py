"""The read-only agent tools, under the same path rules as plans."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.workspace import tools
from engine.workspace.sandbox import SandboxError, Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "a.py").write_text("import os\n\ndef f():\n    return os.sep\n")
    (root / "src" / "b.py").write_text("print('b')\n")
    (root / "README.md").write_text("# readme\nsee src\n")
    (root / "blob.bin").write_bytes(b"\0import os\n")
    (root / ".routeshell").mkdir()
    (root / ".routeshell" / "secret.py").write_text("import os\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.py").write_text("import os\n")
    (root / "out").symlink_to(tmp_path / "outside")
    with Workspace(root) as workspace:
        yield workspace


def test_list_dir_hides_the_state_directory(ws: Workspace) -> None:
    listed = tools.list_dir(ws)
    names = {entry["name"]: entry["kind"] for entry in listed["entries"]}
    assert names == {"src": "directory", "README.md": "file", "blob.bin": "file", "out": "symlink"}
    assert tools.list_dir(ws, "src", limit=1)["truncated"]


def test_read_file_line_ranges(ws: Workspace) -> None:
    whole = tools.read_file(ws, "src/pkg/a.py")
    assert whole["total_lines"] == 4
    part = tools.read_file(ws, "src/pkg/a.py", start=3, end=4)
    assert part["text"] == "def f():\n    return os.sep\n"
    assert (part["start"], part["end"]) == (3, 4)
    with pytest.raises(SandboxError, match="bad line range"):
        tools.read_file(ws, "src/pkg/a.py", start=0)
    with pytest.raises(SandboxError, match="binary"):
        tools.read_file(ws, "blob.bin")


def test_lines_are_counted_at_newlines_only(ws: Workspace) -> None:
    # A form feed or \u2028 inside a line does not end it: line numbers agree with grep -n and sed -n.
    (ws.root / "paged.txt").write_text("one\x0ctwo\nthree\u2028four\r\nfive\n")
    assert tools.read_file(ws, "paged.txt")["total_lines"] == 3
    assert tools.read_file(ws, "paged.txt", start=2, end=2)["text"] == "three\u2028four\r\n"
    found = tools.search(ws, "two|four$|five", path="paged.txt")["matches"]
    assert found == [
        {"path": "paged.txt", "line": 1, "text": "one\x0ctwo"},
        {"path": "paged.txt", "line": 2, "text": "three\u2028four"},
        {"path": "paged.txt", "line": 3, "text": "five"},
    ]


@pytest.mark.parametrize("path", ["../outside/x.py", "out/x.py", "/etc/passwd"])
def test_tools_refuse_paths_outside(ws: Workspace, path: str) -> None:
    with pytest.raises(SandboxError):
        tools.read_file(ws, path)


def test_stat(ws: Workspace) -> None:
    assert tools.stat_path(ws, "README.md")["kind"] == "file"
    assert tools.stat_path(ws, "out")["kind"] == "symlink"
    assert tools.stat_path(ws, "missing")["exists"] is False


def test_glob(ws: Workspace) -> None:
    assert tools.glob(ws, "**/*.py")["matches"] == ["src/b.py", "src/pkg/a.py"]
    assert tools.glob(ws, "src/*.py")["matches"] == ["src/b.py"]
    assert tools.glob(ws, "*.md")["matches"] == ["README.md"]
    with pytest.raises(SandboxError, match="bad glob"):
        tools.glob(ws, "/etc/*")


def test_search_skips_binary_state_and_symlinked_trees(ws: Workspace) -> None:
    found = tools.search(ws, r"^import os")["matches"]
    assert found == [{"path": "src/pkg/a.py", "line": 1, "text": "import os"}]
    assert tools.search(ws, "print", include="src/*.py")["matches"][0]["path"] == "src/b.py"
    with pytest.raises(SandboxError, match="bad regular expression"):
        tools.search(ws, "(")
