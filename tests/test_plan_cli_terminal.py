"""``routeshell plan`` on a terminal: what it asks and shows there, answered as a person would."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.helpers import ROUTESHELL, read_terminal, run_routeshell


def on_a_terminal(args: list[str], answers: bytes, cwd: Path, env: dict[str, str]) -> tuple[int, bytes]:
    """Run ``args`` with a terminal for its input and both outputs, answering ``answers`` to its
    questions; return its exit code and everything the terminal was sent."""
    import pty

    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, cwd=cwd, env=env)
        os.close(follower)
        os.write(leader, answers)
        shown = read_terminal(leader)
        return process.wait(60), shown
    finally:
        os.close(leader)


def test_the_questions_and_the_dry_run_show_a_workspace_path_escaped(tmp_path: Path) -> None:
    """A workspace whose path holds a terminal's escape sequences (a title change, a colour) is
    named escaped in the question before it is adopted, in the apply's question and in the dry run."""
    hostile = tmp_path / "w\x1b]0;pwned\x07\x1b[31m x"
    hostile.mkdir()
    document = tmp_path / "x.json"
    document.write_text(json.dumps({"version": 1, "steps": [{"op": "write", "path": "x.txt", "content": "hi\n"}]}))
    home = tmp_path / "home"  # the workspace is outside it: adopting it is asked first
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    args = [ROUTESHELL, "plan", "apply", str(document), "--workspace", str(hostile)]
    code, shown = on_a_terminal(args, b"y\nn\n", tmp_path, env)
    assert b"\x1b" not in shown, shown
    assert b"\x07" not in shown, shown
    escaped = b"w\\x1b]0;pwned\\x07\\x1b[31m x"
    assert b"routeshell: use " + str(tmp_path).encode() + b"/" + escaped + b" (outside your home" in shown, shown
    assert escaped + b"? [y/N] " in shown, shown  # apply to it?
    assert code == 1  # answered no
    assert not (hostile / "x.txt").exists()
    result = run_routeshell("plan", "apply", str(document), "--dry-run", "--workspace", str(hostile))
    assert result.returncode == 0, result
    assert "\x1b" not in result.stdout
    assert "would be applied to " in result.stdout
    assert "\\x1b]0;pwned\\x07" in result.stdout
