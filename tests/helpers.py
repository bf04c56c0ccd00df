"""Helpers shared by tests: the real command line in a subprocess, and a tree snapshot."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROUTESHELL = str(Path(sys.executable).parent / "routeshell")


#: Environment under which a Python process writes each module it imports on its standard error
#: (``python -X importtime``); :func:`imported` reads that back.
IMPORT_LOG = {"PYTHONPROFILEIMPORTTIME": "1"}


def imported(stderr: str) -> set[str]:
    """The full names of the modules a process run with :data:`IMPORT_LOG` imported."""
    lines = (line for line in stderr.splitlines() if line.startswith("import time:") and "|" in line)
    return {line.rsplit("|", 1)[1].strip() for line in lines}


def run_routeshell(
    *args: str, cwd: Path | None = None, stdin_text: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``routeshell`` script with the test's environment (and ``env``); never
    raises on failure."""
    return subprocess.run(
        [ROUTESHELL, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        input=stdin_text,
        stdin=subprocess.DEVNULL if stdin_text is None else None,
        timeout=120,
        check=False,
    )


#: What root may do whatever a file's mode or owner says; dropped, it meets permissions as any user does.
OVERRIDES = "-dac_override,-dac_read_search,-fowner"


def run_as_a_user(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``routeshell`` as root would run without its power to override permissions (a read-only file
    or one owned by someone else stays so); skip the test when not root or without ``setpriv``."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("running as root without its overrides needs root and setpriv")
    drop = ["setpriv", "--bounding-set", OVERRIDES, "--inh-caps", OVERRIDES]
    result = subprocess.run([*drop, ROUTESHELL, *args], capture_output=True, text=True, env=dict(os.environ),
                            stdin=subprocess.DEVNULL, timeout=120, check=False)  # fmt: skip
    if "setpriv:" in result.stderr:
        pytest.skip(f"setpriv cannot drop capabilities here: {result.stderr.strip()}")
    return result


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    """The command failed with ``code`` and one ``routeshell: error:`` line holding every needle."""
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("routeshell: error: ")
    for needle in needles:
        assert needle in lines[0]


def tree(root: Path) -> dict[str, Any]:
    """Everything under ``root`` but its state directory: kind, content or link target, and mode."""
    found: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".routeshell"]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = os.lstat(path)
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                found[rel] = ("file", path.read_bytes(), stat.S_IMODE(info.st_mode))
            else:
                found[rel] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode))
    return found


@contextlib.contextmanager
def small_disk(path: Path, size: str = "512k") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``path`` (created) for the block; skip the test when not root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def without_xattrs(path: Path) -> Iterator[Path]:
    """Mount a ramfs (no user extended attributes) on ``path`` (created) for the block; skip the test when not root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a ramfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "ramfs", "ramfs", str(path)], check=False).returncode:
        pytest.skip("cannot mount a ramfs here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def read_only_view(source: Path, path: Path) -> Iterator[Path]:
    """Bind ``source`` read-only on ``path`` (created) for the block; skip the test when not root."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    path.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "--bind", str(source), str(path)], check=False).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=False).returncode:
            pytest.skip("cannot remount read-only here")
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill_disk(directory: Path) -> Path:
    """Write zeros into ``directory/filler`` until the disk is full; return the filler's path."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            os.write(fd, bytes(4096))
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def endless(path: Path) -> None:
    """Make ``path`` a link to /dev/zero: a read of it never ends by itself."""
    path.unlink(missing_ok=True)
    path.symlink_to("/dev/zero")


def fifo(path: Path) -> None:
    """Make ``path`` a FIFO no one writes to: a read of it waits forever."""
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def sparse(path: Path, size: int) -> None:
    """Make ``path`` a sparse file of ``size`` bytes (no disk used)."""
    path.unlink(missing_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)


def ext_choices(schema: dict[str, Any]) -> set[str]:
    """Every kind a match's ``ext`` may choose in ``schema``."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            items = node.get("properties", {}).get("ext", {}).get("items") if "properties" in node else None
            if isinstance(items, dict):
                ref = items.get("$ref", "")
                found.update(schema["$defs"][ref.rsplit("/", 1)[1]]["enum"] if ref else items.get("enum", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({key: value for key, value in schema.items() if key != "$defs"} | {"$defs": {
        name: value for name, value in schema["$defs"].items() if not name.startswith("items-")}})  # fmt: skip
    return found


def read_terminal(leader: int, timeout: float = 60) -> bytes:
    """Everything a pseudo-terminal's other end is sent until it is closed (the command ended), or
    until nothing comes for ``timeout`` seconds."""
    import select

    shown = b""
    while select.select([leader], [], [], timeout)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's other end closed: the command ended
            break
        if not chunk:
            break
        shown += chunk
    return shown


def wait_until_caught(process: subprocess.Popen[Any], signum: int, within: float = 60) -> None:
    """Wait until ``process`` has a handler of its own for ``signum`` (its /proc status says so);
    a process that ends first, or has none after ``within`` seconds (it never will), is killed and fails."""
    deadline = time.monotonic() + within
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            status = Path(f"/proc/{process.pid}/status").read_text()
            caught = int(status.split("SigCgt:")[1].split()[0], 16)
            if caught & (1 << (signum - 1)):
                return
        time.sleep(0.001)
    process.kill()
    raise AssertionError(f"the process never caught signal {signum} (exit code {process.wait()})")
