"""kill -9 in the middle of an apply or an undo, then recovery: never half done.

A real apply runs in a child process; the test kills it with SIGKILL once the journal shows a
chosen number of steps started (a different point in each case), then recovers. Recovering an
interrupted apply leaves nothing of it behind, in the workspace or in the trash.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import recover
from engine.plans.journal import journals
from engine.plans.trash import list_trash
from tests.helpers import tree

GROUPS = 40


def initial_tree(root: Path) -> None:
    root.mkdir()
    for index in range(GROUPS):
        (root / f"f{index}.txt").write_text(f"file {index} old\n" * 50)
        (root / f"g{index}.txt").write_text(f"doomed {index}\n")


def crash_plan() -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"op": "mkdir", "path": "moved"}]
    for index in range(GROUPS):
        steps += [
            {"op": "patch", "path": f"f{index}.txt", "find": "old", "replace": "new", "count": 0},
            {"op": "write", "path": f"n{index}.txt", "content": f"new {index}\n" * 200},
            {"op": "append", "path": f"f{index}.txt", "content": "appended\n"},
            {"op": "move", "from": f"n{index}.txt", "to": f"moved/n{index}.txt"},
            {"op": "copy", "from": f"f{index}.txt", "to": f"moved/c{index}.txt"},
            {"op": "delete", "path": f"g{index}.txt"},
            {"op": "write", "path": f"f{index}.txt", "content": f"rewritten {index}\n", "overwrite": True},
        ]
    return {"version": 1, "goal": "crash test", "steps": steps}


def start(code: str, root: Path, plan_file: Path) -> subprocess.Popen[bytes]:
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from engine.plans.model import load_plan\nfrom engine.plans.apply import apply_plan, undo_last\n"
        f"root, plan_file = Path(sys.argv[1]), sys.argv[2]\n{code}\n"
    )
    return subprocess.Popen([sys.executable, "-c", script, str(root), str(plan_file)])


def started_steps(root: Path) -> int:
    logs = list((root / ".routeshell" / "journal").glob("*/log.jsonl")) if (root / ".routeshell").exists() else []
    return sum(log.read_bytes().count(b"\n") for log in logs)


def wait_then_kill(process: subprocess.Popen[bytes], ready: Any, timeout: float = 60) -> bool:
    """SIGKILL ``process`` as soon as ``ready()``; return False if it finished first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            return False
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the child never reached the kill point")
        time.sleep(0.0005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return True


@pytest.mark.parametrize("seed", range(8))
def test_kill_during_apply_then_recover_restores_everything(tmp_path: Path, seed: int) -> None:
    root = tmp_path / "ws"
    initial_tree(root)
    before = tree(root)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(crash_plan()))
    kill_at = random.Random(seed).randint(1, GROUPS * 7)

    child = start("apply_plan(root, load_plan(plan_file))", root, plan_file)
    killed = wait_then_kill(child, lambda: started_steps(root) >= kill_at)
    assert killed, f"the apply finished before step {kill_at}; the kill point is past the end"

    # Between kill and recovery every file holds either its old content or a content the plan writes.
    for path in root.glob("f*.txt"):
        text = path.read_text()
        assert text.startswith(("file ", "rewritten ")), (path, text[:40])

    assert [j.state for j in journals(root)] == ["applying"]
    recovered = recover(root)
    assert len(recovered) == 1
    assert tree(root) == before
    assert [j.state for j in journals(root)] == ["rolled-back"]
    assert not list(root.rglob(".rs-tmp-*"))
    # What the plan made is gone for good, not kept in the trash: the plan never took effect.
    assert list_trash(root) == []


@pytest.mark.parametrize("seed", range(4))
def test_kill_during_undo_then_recover_completes_the_undo(tmp_path: Path, seed: int) -> None:
    root = tmp_path / "ws"
    initial_tree(root)
    before = tree(root)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(crash_plan()))
    assert start("apply_plan(root, load_plan(plan_file))", root, plan_file).wait(timeout=120) == 0
    after_apply = tree(root)
    assert after_apply != before

    child = start("undo_last(root)", root, plan_file)
    state = next((root / ".routeshell" / "journal").iterdir()) / "state"
    delay = random.Random(seed).uniform(0.0, 0.05)
    marked: list[float] = []

    def undoing_for_a_while() -> bool:
        if not marked and state.read_bytes() == b"undoing":
            marked.append(time.monotonic())
        return bool(marked) and time.monotonic() - marked[0] >= delay

    if not wait_then_kill(child, undoing_for_a_while):
        assert tree(root) == before  # the undo finished before the kill: fine, and complete
        return
    recover(root)
    assert tree(root) == before
    assert [j.state for j in journals(root)] == ["undone"]
