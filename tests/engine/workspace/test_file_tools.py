"""The read-only file tools (find, duplicates, disk usage) on real trees under a temporary directory."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.files import tools
from engine.files.match import MatchError
from engine.workspace.sandbox import SandboxError, Workspace

HOSTILE = ["new\nline.txt", "\x1b[31mred.txt", os.fsdecode(b"bad\xff.txt")]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    made = tmp_path / "ws"
    made.mkdir()
    return made


@pytest.fixture
def ws(root: Path) -> Iterator[Workspace]:
    with Workspace(root) as workspace:
        yield workspace


def write(root: Path, path: str, data: bytes | str, mtime: float | None = None) -> Path:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.encode() if isinstance(data, str) else data)
    if mtime is not None:
        os.utime(target, (mtime, mtime))
    return target


def xattr_tags(path: Path, value: bytes) -> None:
    try:
        os.setxattr(path, "user.xdg.tags", value)
    except OSError:
        pytest.skip("the temporary directory's filesystem has no user extended attributes")


def group_paths(result: dict[str, Any]) -> list[list[str]]:
    return [[item["path"] for item in group["files"]] for group in result["groups"]]


# -- find -----------------------------------------------------------------------------------------


def test_find_applies_the_filters_and_reads_tags(root: Path, ws: Workspace) -> None:
    write(root, "logs/big.log", b"x" * 2048, mtime=1_700_000_000)
    write(root, "logs/small.log", b"x" * 10)
    write(root, "docs/a.md", "---\ntags: [a]\n---\n# A\n")
    write(root, "docs/b.md", "# no front matter\n")
    xattr_tags(write(root, "notes.txt", "n"), b"draft,todo")
    write(root, ".git/big.log", b"x" * 4096)

    big = tools.find(ws, {"glob": "**/*.log", "larger_than": "1KB"})
    assert big == {
        "match": {"glob": "**/*.log", "larger_than": "1KB"},
        "entries": [{"path": "logs/big.log", "kind": "file", "size": 2048, "mtime": 1_700_000_000.0, "tags": []}],
        "total": 1,
        "truncated": False,
    }
    assert [e["path"] for e in tools.find(ws, {"glob": "**", "tag": "a"})["entries"]] == ["docs/a.md"]
    tagged = tools.find(ws, {"glob": "*.txt"})["entries"]
    assert [(e["path"], e["tags"]) for e in tagged] == [("notes.txt", ["draft", "todo"])]
    dirs = tools.find(ws, {"glob": "*", "type": "dir"})["entries"]
    assert [(e["path"], e["kind"], e["tags"]) for e in dirs] == [("docs", "dir", []), ("logs", "dir", [])]
    assert [e["path"] for e in tools.find(ws, {"glob": "docs/*", "contains": "FRONT"})["entries"]] == ["docs/b.md"]


def test_find_says_when_it_left_entries_out(root: Path, ws: Workspace) -> None:
    for name in "abc":
        write(root, f"{name}.txt", name)
    cut = tools.find(ws, {"glob": "*.txt"}, limit=2)
    assert [e["path"] for e in cut["entries"]] == ["a.txt", "b.txt"]
    assert (cut["total"], cut["truncated"]) == (3, True)
    assert tools.find(ws, {"glob": "*.txt"}, limit=3)["truncated"] is False


@pytest.mark.parametrize(
    ("match", "needle"),
    [
        ({"glob": "*", "larger_than": "lots"}, "larger_than: 'lots' is not a size"),
        ({"glob": "*", "name_regex": "("}, "name_regex: '(' is not a valid regular expression"),
        ({"glob": "/etc/*"}, "glob: '/etc/*' is absolute"),
        ({"glob": "*", "modified_after": "yesterday"}, "modified_after: 'yesterday' is not a date"),
    ],
)
def test_a_bad_match_is_one_line(ws: Workspace, match: dict[str, Any], needle: str) -> None:
    with pytest.raises(MatchError) as caught:
        tools.find(ws, match)
    assert isinstance(caught.value, SandboxError)
    assert str(caught.value).startswith(needle)
    assert "\n" not in str(caught.value)


# -- duplicates -----------------------------------------------------------------------------------


def test_duplicates_groups_same_content_and_nothing_else(root: Path, ws: Workspace) -> None:
    write(root, "a.txt", "three copies", mtime=1000)
    write(root, "sub/b.txt", "three copies", mtime=3000)
    write(root, "sub/deep/c.txt", "three copies", mtime=2000)
    write(root, "one.bin", b"\x00" * 100, mtime=5000)
    write(root, "two.bin", b"\x00" * 100, mtime=4000)
    write(root, "same-size.txt", "three cOpies")  # the size of the three, other content
    os.link(root / "a.txt", root / "z-hard-link.txt")  # a.txt again, not a copy of it
    os.link(root / "one.bin", root / "sub/one-link.bin")
    (root / "link.txt").symlink_to("a.txt")
    write(root, ".git/objects/x", "three copies")
    write(root, "nested/.GIT/y", "three copies")
    write(root, ".routeshell/trash/z", "three copies")
    # (one mtime for both: written a clock tick apart, the newer came first and the order changed)
    write(root, "empty-1", "", mtime=6000)
    write(root, "empty-2", "", mtime=6000)
    os.mkfifo(root / "pipe")

    found = tools.duplicates(ws)
    assert group_paths(found) == [["one.bin", "two.bin"], ["sub/b.txt", "sub/deep/c.txt", "a.txt"]]
    assert found["groups"][1] == {
        "size": 12,
        "sha256": hashlib.sha256(b"three copies").hexdigest(),
        "files": [
            {"path": "sub/b.txt", "mtime": 3000.0},
            {"path": "sub/deep/c.txt", "mtime": 2000.0},
            {"path": "a.txt", "mtime": 1000.0},
        ],
    }
    assert found["wasted"] == 100 + 2 * 12
    assert (found["path"], found["truncated"]) == (".", False)

    first = tools.duplicates(ws, limit=1)
    assert group_paths(first) == [["one.bin", "two.bin"]]
    assert (first["wasted"], first["truncated"]) == (124, True)
    assert group_paths(tools.duplicates(ws, min_size=50)) == [["one.bin", "two.bin"]]
    assert group_paths(tools.duplicates(ws, min_size=0))[-1:] == [["empty-1", "empty-2"]]
    assert group_paths(tools.duplicates(ws, "sub")) == [["sub/b.txt", "sub/deep/c.txt"]]


def test_large_files_are_compared_whole(root: Path, ws: Workspace) -> None:
    head = os.urandom(tools.HEAD_BYTES)
    write(root, "a.bin", head + b"tail" * 40_000, mtime=2000)
    write(root, "b.bin", head + b"tail" * 40_000, mtime=1000)
    write(root, "c.bin", head + b"TAIL" * 40_000)
    found = tools.duplicates(ws)
    assert group_paths(found) == [["a.bin", "b.bin"]]
    assert found["groups"][0]["sha256"] == hashlib.sha256((root / "a.bin").read_bytes()).hexdigest()


def test_a_file_that_changed_since_the_walk_is_left_out(root: Path, ws: Workspace) -> None:
    path = write(root, "a.txt", "before")
    walked = os.lstat(path)
    assert tools._sha256(ws, "a.txt", walked, limit=None) == hashlib.sha256(b"before").hexdigest()
    path.write_text("after!")
    os.utime(path, ns=(walked.st_atime_ns, walked.st_mtime_ns + 1))
    assert tools._sha256(ws, "a.txt", walked, limit=None) is None
    path.unlink()
    assert tools._sha256(ws, "a.txt", walked, limit=None) is None


def test_progress_counts_entries(root: Path, ws: Workspace) -> None:
    for index in range(1500):
        write(root, f"many/{index}", "x" * index)  # no two of a size: nothing to hash
    seen: list[int] = []
    assert tools.duplicates(ws, progress=seen.append)["groups"] == []
    assert seen == [1000]


# -- disk usage -----------------------------------------------------------------------------------


def test_disk_usage_sums_by_directory_largest_first(root: Path, ws: Workspace) -> None:
    write(root, "big/data", b"x" * 3000)
    write(root, "big/sub/more", b"x" * 1000)
    write(root, "small/one", b"x" * 10)
    write(root, "empty/.keep", b"")
    write(root, "top", b"x" * 5)
    write(root, ".git/objects/pack", b"x" * 10_000)
    write(root, "big/.Git/HEAD", b"x" * 10_000)
    write(root, ".routeshell/trash/old", b"x" * 10_000)
    (root / "to-big").symlink_to("big")
    link_size = os.lstat(root / "to-big").st_size

    usage = tools.disk_usage(ws)
    assert usage == {
        "path": ".",
        "total": 4015 + link_size,
        "files": 6,
        "dirs": [
            {"path": "big", "size": 4000, "files": 2},
            {"path": "small", "size": 10, "files": 1},
            {"path": "empty", "size": 0, "files": 1},
        ],
        "unreadable": [],
        "truncated": False,
    }
    deeper = tools.disk_usage(ws, depth=2, limit=2)
    assert deeper["dirs"] == [{"path": "big", "size": 4000, "files": 2}, {"path": "big/sub", "size": 1000, "files": 1}]
    assert deeper["truncated"] is True
    assert tools.disk_usage(ws, depth=0)["dirs"] == []
    assert tools.disk_usage(ws, "big")["dirs"] == [{"path": "big/sub", "size": 1000, "files": 1}]


def test_disk_usage_counts_a_hard_linked_file_once(root: Path, ws: Workspace) -> None:
    write(root, "a/data", b"x" * 100)
    os.link(root / "a/data", root / "b-data")
    usage = tools.disk_usage(ws)
    assert (usage["total"], usage["files"]) == (100, 2)


def as_unprivileged(call: Callable[[], Any]) -> Any:
    """``call()``, in a child process run as nobody when this one is root (root reads any directory)."""
    if os.geteuid() != 0:
        return call()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 0
        try:
            os.close(reader)
            os.setgid(65534)
            os.setuid(65534)
            with os.fdopen(writer, "w") as out:
                json.dump(call(), out)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(writer)
    with os.fdopen(reader) as result:
        text = result.read()
    assert os.waitpid(pid, 0)[1] == 0
    return json.loads(text)


def test_an_unreadable_directory_counts_as_nothing(root: Path, ws: Workspace) -> None:
    write(root, "locked/secret", b"x" * 100)
    write(root, "locked/copy", b"x" * 10)
    write(root, "open/file", b"x" * 10)
    assert sorted(*group_paths(tools.duplicates(ws))) == ["locked/copy", "open/file"]
    (root / "locked").chmod(0)
    try:
        usage = as_unprivileged(lambda: tools.disk_usage(ws))
        found = as_unprivileged(lambda: tools.duplicates(ws, min_size=0))
    finally:
        (root / "locked").chmod(0o755)
    assert usage["unreadable"] == ["locked"]
    assert usage["total"] == 10
    assert {"path": "locked", "size": 0, "files": 0} in usage["dirs"]
    assert found["groups"] == []


@pytest.mark.parametrize("tool", [tools.duplicates, tools.disk_usage])
@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("missing", "nothing there"),
        ("file", "not a directory"),
        ("to-dir", "not a directory"),
        (".git", ".git/ is not looked into"),
        ("sub/.GIT/objects", ".GIT/ is not looked into"),
        (".routeshell", ".routeshell/ is not looked into"),
        ("../x", "leads outside"),
    ],
)
def test_a_path_that_is_not_a_directory_of_the_workspace_is_refused(
    root: Path, ws: Workspace, tool: Any, path: str, needle: str
) -> None:
    write(root, "file", "x")
    (root / "dir").mkdir()
    (root / "to-dir").symlink_to("dir")
    with pytest.raises(SandboxError, match=needle):
        tool(ws, path)


# -- hostile names --------------------------------------------------------------------------------


def test_hostile_names_come_back_as_the_same_names(root: Path, ws: Workspace) -> None:
    for name in HOSTILE:
        (root / name).mkdir()
        (root / name / name).write_bytes(b"same")
    found = tools.find(ws, {"glob": "*/*"})["entries"]
    assert sorted(os.fsencode(e["path"]) for e in found) == sorted(os.fsencode(f"{n}/{n}") for n in HOSTILE)
    (group,) = tools.duplicates(ws)["groups"]
    assert sorted(item["path"] for item in group["files"]) == sorted(f"{n}/{n}" for n in HOSTILE)
    usage = tools.disk_usage(ws)
    assert sorted(row["path"] for row in usage["dirs"]) == sorted(HOSTILE)
    assert all(row["size"] == 4 for row in usage["dirs"])
