"""Files far bigger than memory: a copy moves them a piece at a time and keeps their holes, and a
step that would read one whole to rewrite it is refused in one line before it reads anything."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.plans.files import CHUNK_BYTES, copy_regular, hash_regular, read_regular
from engine.workspace.sandbox import SandboxError
from tests.helpers import assert_one_line_error, run_routeshell

GIB = 1 << 30


def _sparse(path: Path, size: int, pieces: dict[int, bytes]) -> None:
    """A file of ``size`` bytes that holds ``pieces`` at their offsets and holes everywhere else."""
    with path.open("wb") as handle:
        for offset, data in pieces.items():
            handle.seek(offset)
            handle.write(data)
        handle.truncate(size)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _holes_supported(path: Path) -> bool:
    _sparse(path, 1 << 24, {0: b"x"})
    sparse = path.stat().st_blocks * 512 < 1 << 20
    path.unlink()
    return sparse


def test_a_copy_holds_the_same_bytes_and_keeps_the_holes(tmp_path: Path) -> None:
    if not _holes_supported(tmp_path / "probe"):
        pytest.skip("this filesystem keeps no holes")
    # Data at the start, across a piece boundary, and in the last bytes; holes between.
    pieces = {0: b"head" * 1000, 3 * CHUNK_BYTES - 7: b"across" * 10, GIB - 5: b"tail!"}
    _sparse(tmp_path / "disk.img", GIB, pieces)
    os.setxattr(tmp_path / "disk.img", "user.xdg.tags", b"vm")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        copy_regular(fd, "disk.img", fd, "copy.img")
        assert hash_regular(fd, "copy.img") == hash_regular(fd, "disk.img") == _digest(tmp_path / "disk.img")
    finally:
        os.close(fd)
    copy = (tmp_path / "copy.img").stat()
    assert copy.st_size == GIB
    assert copy.st_blocks * 512 < 16 << 20  # the holes stayed holes
    assert os.getxattr(tmp_path / "copy.img", "user.xdg.tags") == b"vm"


def test_a_file_that_is_all_hole_or_empty_copies(tmp_path: Path) -> None:
    _sparse(tmp_path / "hole", 5 * CHUNK_BYTES + 3, {})
    (tmp_path / "empty").write_bytes(b"")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        copy_regular(fd, "hole", fd, "hole2")
        copy_regular(fd, "empty", fd, "empty2")
        with pytest.raises(FileExistsError):
            copy_regular(fd, "empty", fd, "hole2")  # never replaces
    finally:
        os.close(fd)
    assert (tmp_path / "hole2").read_bytes() == bytes(5 * CHUNK_BYTES + 3)
    assert (tmp_path / "empty2").read_bytes() == b""


def test_a_step_does_not_read_a_file_bigger_than_its_limit(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(b"x" * 100)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_regular(fd, "log", limit=100)[0] == b"x" * 100
        with pytest.raises(SandboxError, match="too big for a step to rewrite"):
            read_regular(fd, "log", limit=99)
    finally:
        os.close(fd)


#: Runs the command line in-process and writes its peak memory in KiB to a file: the high-water
#: mark of its own address space (VmHWM), which starts at exec. (``ru_maxrss`` would also count what
#: the process held as a fork of the test process before exec: a test worker holds a gigabyte.)
_MEASURED = """
import sys
from tui.cli import main
peak_file = sys.argv.pop(1)
try:
    code = main()
except SystemExit as exit:
    code = exit.code
with open("/proc/self/status") as status:
    peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
with open(peak_file, "w") as out:
    out.write(peak)
sys.exit(code)
"""


def _apply(tmp_path: Path, ws: Path, steps: list[dict[str, object]]) -> tuple[subprocess.CompletedProcess[str], int]:
    """Apply a plan with the real command line; return the result and the peak memory (KiB) it used."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "goal": "big", "steps": steps}))
    peak = tmp_path / "peak"
    argv = [sys.executable, "-c", _MEASURED, str(peak), "plan", "apply", str(plan), "--yes", "--workspace", str(ws)]
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, check=False)
    return result, int(peak.read_text())


def test_copying_a_file_bigger_than_memory_allows_uses_bounded_memory_and_undoes(tmp_path: Path) -> None:
    if not _holes_supported(tmp_path / "probe"):
        pytest.skip("this filesystem keeps no holes")
    ws = tmp_path / "ws"
    ws.mkdir()
    size = 3 * GIB
    _sparse(ws / "movie.mkv", size, {0: b"MKV" * 100, size - 3: b"end"})
    result, peak_kib = _apply(
        tmp_path, ws, [{"op": "mkdir", "path": "backup"}, {"op": "copy", "from": "movie.mkv", "to": "backup/movie.mkv"}]
    )
    assert result.returncode == 0, result.stderr
    # Reading it whole would take 3 GiB; the copy and the fingerprint undo checks take a piece at a time.
    assert peak_kib < 1 << 20, peak_kib
    assert (ws / "backup/movie.mkv").stat().st_size == size
    assert (ws / "backup/movie.mkv").stat().st_blocks * 512 < 16 << 20
    undone = run_routeshell("plan", "undo", "--workspace", str(ws))
    assert undone.returncode == 0, undone.stderr
    assert not (ws / "backup/movie.mkv").exists()


def test_rewriting_a_file_over_the_limit_is_refused_in_one_line(tmp_path: Path) -> None:
    if not _holes_supported(tmp_path / "probe"):
        pytest.skip("this filesystem keeps no holes")
    ws = tmp_path / "ws"
    ws.mkdir()
    _sparse(ws / "huge.log", 2 * GIB, {0: b"log line\n"})
    for step in (
        {"op": "append", "path": "huge.log", "content": "one more\n"},
        {"op": "patch", "path": "huge.log", "find": "log", "replace": "LOG"},
        {"op": "write", "path": "huge.log", "content": "new\n", "overwrite": True},
    ):
        result, _ = _apply(tmp_path, ws, [step])
        assert result.returncode != 0
        assert_one_line_error(result, result.returncode, "huge.log", "too big for a step to rewrite")
    assert (ws / "huge.log").stat().st_size == 2 * GIB


def test_a_copy_of_a_sparse_file_that_fills_the_disk_rolls_back_whole(tmp_path: Path) -> None:
    # 1 GiB that takes 3 MiB of a 5 MiB disk: its copy runs out of space part way, after the first
    # pieces were written. Nothing of it may stay, and the original is untouched.
    from engine.plans.apply import StepFailed, apply_plan
    from engine.plans.journal import journals
    from engine.plans.model import parse_plan
    from tests.helpers import small_disk

    def free(path: Path) -> int:
        info = os.statvfs(path)
        return info.f_bavail * info.f_frsize

    with small_disk(tmp_path / "disk", "5m") as disk:
        ws = disk / "ws"
        ws.mkdir()
        mib = bytes(range(256)) * 4096
        _sparse(ws / "disk.img", GIB, {0: mib, GIB // 2: mib, GIB - len(mib): mib})
        if (ws / "disk.img").stat().st_blocks * 512 > 4 << 20:
            pytest.skip("this filesystem keeps no holes")
        digest = _digest(ws / "disk.img")
        room = free(ws)
        step = {"op": "copy", "from": "disk.img", "to": "copy.img"}
        document = parse_plan(json.dumps({"version": 1, "goal": "copy", "steps": [step]}))
        with pytest.raises((StepFailed, OSError)) as raised:
            apply_plan(ws, document)
        assert "No space left" in str(raised.value), raised.value
        assert "\n" not in str(raised.value)
        assert sorted(os.listdir(ws)) in (["disk.img"], [".routeshell", "disk.img"])
        assert _digest(ws / "disk.img") == digest
        assert [journal.state for journal in journals(ws)] in ([], ["rolled-back"])
        # The part copy's blocks are free again (the journal keeps a few pages).
        assert free(ws) > room - (256 << 10)
