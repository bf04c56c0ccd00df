"""``--plain``'s ``/undo [ID]``: the plan named, as ``routeshell plan undo ID`` undoes it, or the last one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers import run_routeshell


def apply(workspace: Path, tmp_path: Path, name: str) -> str:
    """Apply a plan that writes ``name``; return its journal id."""
    plan = tmp_path / f"{name}.json"
    plan.write_text(json.dumps({"version": 1, "steps": [{"op": "write", "path": name, "content": "x\n"}]}))
    result = run_routeshell("plan", "apply", str(plan), "--yes", "--json", "--workspace", str(workspace))
    assert result.returncode == 0, result
    return str(json.loads(result.stdout.splitlines()[-1])["journal"])


def plain(workspace: Path, lines: str) -> subprocess.CompletedProcess[str]:
    return run_routeshell("--plain", "--profile", "ci", "--workspace", str(workspace), stdin_text=lines)


def test_undo_with_an_id_or_a_number_undoes_that_plan(workspace: Path, tmp_path: Path) -> None:
    first = apply(workspace, tmp_path, "one.txt")
    second = apply(workspace, tmp_path, "two.txt")
    third = apply(workspace, tmp_path, "three.txt")
    result = plain(workspace, f"/undo 1\n/undo {second}\n")
    assert result.returncode == 0, result
    assert f"undid plan {first} (1 step(s))" in result.stdout
    assert f"undid plan {second} (1 step(s))" in result.stdout
    assert not (workspace / "one.txt").exists()
    assert not (workspace / "two.txt").exists()
    assert (workspace / "three.txt").exists()  # later plans are left alone
    last = plain(workspace, "/undo\n")
    assert last.returncode == 0, last
    assert f"undid plan {third}" in last.stdout
    assert not (workspace / "three.txt").exists()


def test_a_bad_undo_argument_is_one_line_and_exit_2(workspace: Path, tmp_path: Path) -> None:
    first = apply(workspace, tmp_path, "one.txt")
    for line, needle in (
        ("/undo 7", "error: no plan '7'"),
        ("/undo 1 2", "error: usage: /undo [ID]"),
    ):
        result = plain(workspace, f"{line}\n")
        assert result.returncode == 2, result
        [error] = [text for text in result.stdout.splitlines() if text.startswith("error: ")]
        assert needle in error, result.stdout
        assert "Traceback" not in result.stderr
        assert (workspace / "one.txt").exists()
    assert plain(workspace, "/undo 1\n").returncode == 0
    again = plain(workspace, "/undo 1\n")
    assert again.returncode == 2, again
    assert f"error: plan {first} is undone, not applied: nothing to undo" in again.stdout


def test_an_undo_that_would_lose_later_work_is_exit_1(workspace: Path, tmp_path: Path) -> None:
    apply(workspace, tmp_path, "one.txt")
    apply(workspace, tmp_path, "two.txt")
    (workspace / "one.txt").write_text("changed since\n")
    result = plain(workspace, "/undo 1\n")
    assert result.returncode == 1, result
    assert "error: cannot undo plan 00001-" in result.stdout
    assert (workspace / "one.txt").read_text() == "changed since\n"
    assert (workspace / "two.txt").exists()
