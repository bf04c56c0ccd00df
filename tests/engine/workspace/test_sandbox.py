"""The attack suite: every sandbox rule against every op, as source and as destination.

Each attack builds a real layout (symlinks, hard links, FIFOs, a sibling directory with the same
prefix) around a workspace, applies a plan that aims at the outside, and checks that the plan is
refused and that nothing outside, or inside, changed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.plans.apply import StepFailed, apply_plan
from engine.plans.model import InvalidPlan, normalise, plan_problems
from engine.workspace import sandbox
from engine.workspace.sandbox import SandboxError, Workspace, check_relpath
from engine.workspace.state import StateError
from tests.helpers import tree


class Layout:
    """A workspace ``p`` beside ``p-evil`` and ``outside``, with hostile entries inside ``p``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "p"
        self.outside = base / "outside"
        self.sibling = base / "p-evil"
        for directory in (self.root / "sub", self.outside / "dir", self.sibling):
            directory.mkdir(parents=True)
        (self.outside / "secret.txt").write_text("secret\n")
        (self.outside / "dir" / "inner.txt").write_text("inner\n")
        (self.sibling / "x.txt").write_text("sibling\n")
        (self.root / "file.txt").write_text("hello old\n")
        (self.root / "sub" / "inner.txt").write_text("inner old\n")
        (self.root / "out-dir").symlink_to(self.outside)
        (self.root / "out-file").symlink_to(self.outside / "secret.txt")
        (self.root / "out-dangling").symlink_to(self.outside / "missing.txt")
        (self.root / "out-relative").symlink_to("../outside")
        (self.root / "sibling-link").symlink_to("../p-evil")
        (self.root / "sub" / "out-deep").symlink_to(self.outside / "dir")
        (self.root / "proc-root").symlink_to("/proc/self/root")
        (self.root / "proc-cwd").symlink_to("/proc/self/cwd")
        os.link(self.outside / "secret.txt", self.root / "hardlink.txt")
        os.mkfifo(self.root / "fifo")
        # A character device (the same as /dev/zero: reading it would never end); needs root.
        self.has_device = os.geteuid() == 0
        if self.has_device:
            os.mknod(self.root / "chardev", 0o600 | stat.S_IFCHR, os.makedev(1, 5))
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(self.root / "sock"))

    def snapshot(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        return tree(self.root), tree(self.outside), tree(self.sibling)


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[Layout]:
    built = Layout(tmp_path)
    yield built
    built.sock.close()


def apply_document(root: Path, document: dict[str, Any]) -> None:
    problems = plan_problems(document)
    if problems:
        raise InvalidPlan("plan", problems)
    apply_plan(root, normalise(document))


# Paths that the plan validator refuses before anything is touched.
INVALID_PATHS = {
    "absolute": "/etc/passwd",
    "absolute-into-root": "{root}/file.txt",
    "dotdot": "../outside/secret.txt",
    "dotdot-deep": "sub/../../outside/secret.txt",
    "sibling-prefix": "../p-evil/x.txt",
    "nul": "file\x00.txt",
    "long-name": "n" * 256,
    "long-path": "/".join(["d"] * 2100),
}
# Paths that pass validation and must be refused by the resolution itself.
ESCAPING_PATHS = {
    "symlink-dir": "out-dir/secret.txt",
    "symlink-dir-new": "out-dir/new.txt",
    "relative-symlink": "out-relative/secret.txt",
    "sibling-symlink": "sibling-link/x.txt",
    "intermediate-symlink": "sub/out-deep/inner.txt",
    "intermediate-symlink-new": "sub/out-deep/new.txt",
    "proc-magic-root": "proc-root/etc/hostname",
    "proc-magic-cwd": "proc-cwd/x.txt",
}
# Entries inside the workspace that a step must not write through or read from.
HOSTILE_ENTRIES = {
    "symlink-file": "out-file",
    "dangling-symlink": "out-dangling",
    "fifo": "fifo",
    "socket": "sock",
    "char-device": "chardev",
}


def step_for(op: str, key: str, hostile: str) -> list[dict[str, Any]]:
    """A plan whose ``key`` of an ``op`` step is ``hostile``, the other keys harmless."""
    base: dict[str, dict[str, Any]] = {
        "mkdir": {"op": "mkdir", "path": "newdir"},
        "write": {"op": "write", "path": "new.txt", "content": "pwned\n", "overwrite": True},
        "append": {"op": "append", "path": "file.txt", "content": "pwned\n"},
        "patch": {"op": "patch", "path": "file.txt", "find": "old", "replace": "pwned"},
        "move": {"op": "move", "from": "file.txt", "to": "moved.txt"},
        "copy": {"op": "copy", "from": "file.txt", "to": "copied.txt"},
        "delete": {"op": "delete", "path": "file.txt"},
    }
    step = dict(base[op])
    step[key] = hostile
    # A harmless first step, so a refusal must also roll it back.
    return [{"op": "write", "path": "first.txt", "content": "first\n"}, step]


OP_KEYS = [
    ("mkdir", "path"),
    ("write", "path"),
    ("append", "path"),
    ("patch", "path"),
    ("move", "from"),
    ("move", "to"),
    ("copy", "from"),
    ("copy", "to"),
    ("delete", "path"),
]


@pytest.mark.parametrize(("op", "key"), OP_KEYS)
@pytest.mark.parametrize("attack", sorted(INVALID_PATHS))
def test_invalid_paths_are_refused_by_validation(layout: Layout, op: str, key: str, attack: str) -> None:
    before = layout.snapshot()
    hostile = INVALID_PATHS[attack].format(root=layout.root)
    with pytest.raises(InvalidPlan) as info:
        apply_document(layout.root, {"version": 1, "steps": step_for(op, key, hostile)})
    assert info.value.problems[0].pointer == f"/steps/1/{key}"
    assert layout.snapshot() == before


@pytest.mark.parametrize(("op", "key"), OP_KEYS)
@pytest.mark.parametrize("attack", sorted(ESCAPING_PATHS))
def test_escaping_paths_are_refused_when_resolved(
    layout: Layout, resolution: str, op: str, key: str, attack: str
) -> None:
    before = layout.snapshot()
    with pytest.raises(StepFailed, match=r"^step 2 "):
        apply_document(layout.root, {"version": 1, "steps": step_for(op, key, ESCAPING_PATHS[attack])})
    assert layout.snapshot() == before


@pytest.mark.parametrize(("op", "key"), OP_KEYS)
@pytest.mark.parametrize("attack", sorted(HOSTILE_ENTRIES))
def test_symlinks_and_special_files_are_never_followed_or_read(
    layout: Layout, resolution: str, op: str, key: str, attack: str
) -> None:
    if attack == "char-device" and not layout.has_device:
        pytest.skip("creating a device node needs root")
    before = layout.snapshot()
    target = HOSTILE_ENTRIES[attack]
    document = {"version": 1, "steps": step_for(op, key, target)}
    result: list[BaseException | None] = []

    def attempt() -> None:
        try:
            apply_document(layout.root, document)
            result.append(None)
        except BaseException as exc:
            result.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert result, "the step blocked (it opened a FIFO or socket)"
    after = layout.snapshot()
    assert after[1:] == before[1:], "something outside the workspace changed"
    if result[0] is None:
        # Allowed only where the step acts on the entry itself and never through it:
        # moving, copying or deleting a symlink, FIFO or socket as a name.
        assert (op, key) in {("move", "from"), ("copy", "from"), ("delete", "path")} or key == "to"
        assert op != "copy" or attack in ("symlink-file", "dangling-symlink")
    else:
        assert isinstance(result[0], (StepFailed, InvalidPlan))
        assert after == before


@pytest.mark.parametrize("op", ["write", "append", "patch"])
def test_hard_link_to_outside_inode_is_never_written(layout: Layout, resolution: str, op: str) -> None:
    steps = step_for(op, "path", "hardlink.txt")
    if op == "patch":
        steps[1].update(find="secret", replace="pwned")
    apply_document(layout.root, {"version": 1, "steps": steps})
    assert (layout.outside / "secret.txt").read_text() == "secret\n"
    assert "pwned" in (layout.root / "hardlink.txt").read_text()


@pytest.mark.parametrize("target", [".git/config", ".git", ".routeshell/journal", ".routeshell", "./.git/x"])
# Every key that changes what is at its path; reading .git (copying from it) is allowed.
@pytest.mark.parametrize(("op", "key"), [pair for pair in OP_KEYS if pair != ("copy", "from")])
def test_git_and_state_directories_are_protected(layout: Layout, op: str, key: str, target: str) -> None:
    (layout.root / ".git").mkdir()
    (layout.root / ".git" / "config").write_text("[core]\n")
    with pytest.raises(InvalidPlan, match="is protected"):
        apply_document(layout.root, {"version": 1, "steps": step_for(op, key, target)})
    assert (layout.root / ".git" / "config").read_text() == "[core]\n"


def test_recursive_copy_and_delete_never_follow_symlinks_out(layout: Layout, resolution: str) -> None:
    (layout.root / "tree").mkdir()
    (layout.root / "tree" / "link-out").symlink_to(layout.outside)
    (layout.root / "tree" / "real.txt").write_text("real\n")
    apply_document(layout.root, {"version": 1, "steps": [{"op": "copy", "from": "tree", "to": "tree2"}]})
    assert os.readlink(layout.root / "tree2" / "link-out") == str(layout.outside)
    assert (layout.root / "tree2" / "real.txt").read_text() == "real\n"
    outside_before = tree(layout.outside)
    apply_document(
        layout.root, {"version": 1, "steps": [{"op": "delete", "path": "tree"}, {"op": "delete", "path": "tree2"}]}
    )
    assert tree(layout.outside) == outside_before
    assert not (layout.root / "tree").exists()


def test_copy_of_a_directory_holding_a_fifo_is_refused_without_blocking(layout: Layout) -> None:
    (layout.root / "withfifo").mkdir()
    os.mkfifo(layout.root / "withfifo" / "pipe")
    before = layout.snapshot()
    with pytest.raises(StepFailed, match="FIFO"):
        apply_document(layout.root, {"version": 1, "steps": [{"op": "copy", "from": "withfifo", "to": "copy"}]})
    assert layout.snapshot() == before


def test_a_state_directory_that_is_a_symlink_is_refused(layout: Layout) -> None:
    (layout.root / ".routeshell").symlink_to(layout.outside)
    before = tree(layout.outside)
    with pytest.raises(StateError, match="not a directory"):
        apply_document(layout.root, {"version": 1, "steps": [{"op": "write", "path": "n.txt", "content": ""}]})
    assert tree(layout.outside) == before
    assert not (layout.root / "n.txt").exists()


def test_symlink_race_never_writes_outside(tmp_path: Path, resolution: str) -> None:
    """Flip a directory and a symlink to the outside while plans write into it."""
    layout = Layout(tmp_path)
    target = layout.root / "racy"
    stop = threading.Event()

    def flipper() -> None:
        while not stop.is_set():
            for make in (lambda: target.mkdir(), lambda: target.symlink_to(layout.outside)):
                with contextlib.suppress(FileExistsError):
                    make()
                try:
                    if target.is_symlink():
                        target.unlink()
                    else:
                        for child in target.iterdir():
                            child.unlink()
                        target.rmdir()
                except OSError:
                    pass

    thread = threading.Thread(target=flipper, daemon=True)
    thread.start()
    try:
        for index in range(150):
            document = {"version": 1, "steps": [{"op": "write", "path": f"racy/f{index}.txt", "content": "x"}]}
            # A step whose directory became a symlink out cannot be rolled back through it: the
            # journal stays open (StateError) until the path is fixed, and nothing goes outside.
            with contextlib.suppress(StepFailed, SandboxError, StateError):
                apply_document(layout.root, document)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert sorted(p.name for p in layout.outside.iterdir()) == ["dir", "secret.txt"]
    layout.sock.close()


# -- property tests -------------------------------------------------------------------------

SEGMENTS = st.sampled_from(["a", "b", "..", ".", "", "in-link", "out-link", "up-link", "loop", "file.txt"])


def _property_layout(base: Path) -> Path:
    root = base / "root"
    (root / "a" / "b").mkdir(parents=True, exist_ok=True)
    (base / "elsewhere").mkdir(exist_ok=True)
    (root / "file.txt").write_text("x")
    for name, target in {
        "in-link": "a/b",
        "a/out-link": str(base / "elsewhere"),
        "a/b/up-link": "../../..",
        "loop": "loop",
    }.items():
        if not os.path.lexists(root / name):
            (root / name).symlink_to(target)
    return root


def _real_location(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(parts=st.lists(SEGMENTS, min_size=1, max_size=8), walk=st.booleans())
def test_resolved_paths_never_leave_the_root(tmp_path: Path, parts: list[str], walk: bool) -> None:
    root = _property_layout(tmp_path)
    raw = "/".join(parts)
    try:
        path = check_relpath(raw)
    except SandboxError:
        return
    saved = sandbox.HAVE_OPENAT2
    sandbox.HAVE_OPENAT2 = saved and not walk
    try:
        with Workspace(root) as ws:
            try:
                fd = ws.open(path, os.O_PATH)
            except SandboxError:
                return
            try:
                real = _real_location(fd)
            finally:
                os.close(fd)
    finally:
        sandbox.HAVE_OPENAT2 = saved
    assert real == str(root) or real.startswith(str(root) + "/")


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    targets=st.lists(
        st.sampled_from(["..", "../..", "/", "/etc", "a", "a/../..", "./a", "../root/a", "/proc/self/root"]),
        min_size=1,
        max_size=4,
    ),
    tail=st.sampled_from(["", "x", "a", "etc"]),
)
def test_generated_symlink_layouts_never_resolve_outside(tmp_path: Path, targets: list[str], tail: str) -> None:
    base = tmp_path / f"case{abs(hash((tuple(targets), tail)))}"
    root = base / "root"
    (root / "a").mkdir(parents=True, exist_ok=True)
    chain = []
    for index, target in enumerate(targets):
        name = f"l{index}"
        if not os.path.lexists(root / name):
            (root / name).symlink_to(target)
        chain.append(name)
    for candidate in ["/".join(chain[: i + 1]) + (f"/{tail}" if tail else "") for i in range(len(chain))]:
        with Workspace(root) as ws:
            try:
                fd = ws.open(check_relpath(candidate), os.O_PATH)
            except SandboxError:
                continue
            try:
                real = _real_location(fd)
            finally:
                os.close(fd)
        assert real == str(root) or real.startswith(str(root) + "/"), (candidate, real)


def test_check_relpath_normal_form() -> None:
    assert check_relpath("a//b/./c/") == "a/b/c"
    assert check_relpath("a/../b") == "b"
    assert check_relpath(".") == "."
    for bad in ("", "/x", "..", "a/../../b", "x\x00"):
        with pytest.raises(SandboxError):
            check_relpath(bad)


def bytes_read_by_this_thread() -> int:
    """What the kernel counts as read by this thread so far (``rchar``: every read call, any file)."""
    fd = os.open("/proc/thread-self/io", os.O_RDONLY)
    try:
        text = os.read(fd, 4096).decode()
    finally:
        os.close(fd)
    return int(text.split("rchar:")[1].split()[0])


@pytest.mark.parametrize("limit", [0, 1, 1024, 100_000])
def test_a_bounded_read_reads_no_more_than_asked(tmp_path: Path, limit: int) -> None:
    if not os.path.exists("/proc/thread-self/io"):
        pytest.skip("the kernel does not count what a thread reads here")
    data = os.urandom(1 << 20)
    (tmp_path / "big.bin").write_bytes(data)
    with Workspace(tmp_path) as ws:
        ws.read_bytes("big.bin", 1)  # whatever a first call reads besides (an import, a lookup)
        before = bytes_read_by_this_thread()
        head = ws.read_bytes("big.bin", limit)
        read = bytes_read_by_this_thread() - before
    assert head == data[:limit]
    assert read <= limit + 512  # the file's bytes, and the few of the count read before
