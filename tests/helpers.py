"""Helpers shared by tests: the real command line in a subprocess, and a tree snapshot."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

ROUTESHELL = str(Path(sys.executable).parent / "routeshell")


def run_routeshell(
    *args: str, cwd: Path | None = None, stdin_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``routeshell`` script with the test's environment; never raises on failure."""
    return subprocess.run(
        [ROUTESHELL, *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=cwd,
        input=stdin_text,
        stdin=subprocess.DEVNULL if stdin_text is None else None,
        timeout=120,
        check=False,
    )


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
