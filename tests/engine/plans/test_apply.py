"""Applying, rolling back and undoing plans on a real temp workspace."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import StepFailed, apply_plan, undo_last
from engine.plans.dry_run import preview_plan
from engine.plans.journal import journals
from engine.plans.model import parse_plan
from engine.plans.runner import Limits
from tests.helpers import tree


def plan(*steps: dict[str, Any], goal: str = "") -> dict[str, Any]:
    import json

    return parse_plan(json.dumps({"version": 1, "goal": goal, "steps": list(steps)}))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "m.py").write_text("x = old\ny = old\n")
    (root / "old.txt").write_text("old\n")
    (root / "a.log").write_text("log\n")
    os.chmod(root / "old.txt", 0o640)
    os.utime(root / "old.txt", (1_600_000_000, 1_600_000_000))
    return root


def test_every_op_applies_and_undo_restores_bit_for_bit(ws: Path) -> None:
    before = tree(ws)
    old_info = os.stat(ws / "old.txt")
    result = apply_plan(
        ws,
        plan(
            {"op": "mkdir", "path": "logs/deep"},
            {"op": "write", "path": "logs/a.txt", "content": "text"},
            {"op": "append", "path": "notes.md", "content": "more"},
            {"op": "append", "path": "old.txt", "content": "appended\n"},
            {"op": "patch", "path": "src/m.py", "find": "old", "replace": "new", "count": 0},
            {"op": "move", "from": "a.log", "to": "logs/a.log"},
            {"op": "copy", "from": "src", "to": "src_backup"},
            {"op": "delete", "path": "old.txt"},
            {"op": "run", "argv": ["python3", "-c", "print('ran')"], "timeout_s": 60},
        ),
    )
    assert result.runs[0].exit_code == 0
    assert "ran" in result.runs[0].output_tail
    assert (ws / "logs" / "a.txt").read_text() == "text"
    assert (ws / "notes.md").read_text() == "more"
    assert (ws / "src" / "m.py").read_text() == "x = new\ny = new\n"
    assert (ws / "src_backup" / "m.py").read_text() == "x = new\ny = new\n"
    assert (ws / "logs" / "a.log").read_text() == "log\n"
    assert not (ws / "old.txt").exists()
    assert (ws / "logs" / "deep").is_dir()

    undone = undo_last(ws)
    assert undone.id == result.journal_id
    assert tree(ws) == before
    restored = os.stat(ws / "old.txt")
    assert (restored.st_ino, restored.st_mtime, stat.S_IMODE(restored.st_mode)) == (
        old_info.st_ino,
        old_info.st_mtime,
        0o640,
    )


def test_patch_counts(ws: Path) -> None:
    apply_plan(ws, plan({"op": "patch", "path": "src/m.py", "find": "old", "replace": "new"}))
    assert (ws / "src" / "m.py").read_text() == "x = new\ny = old\n"
    with pytest.raises(StepFailed, match="occurs 1 times, fewer than count=2"):
        apply_plan(ws, plan({"op": "patch", "path": "src/m.py", "find": "old", "replace": "new", "count": 2}))
    with pytest.raises(StepFailed, match="does not occur"):
        apply_plan(ws, plan({"op": "patch", "path": "src/m.py", "find": "absent", "replace": "x"}))


def test_write_refuses_to_overwrite_unless_asked(ws: Path) -> None:
    with pytest.raises(StepFailed, match="already exists"):
        apply_plan(ws, plan({"op": "write", "path": "old.txt", "content": "new"}))
    apply_plan(ws, plan({"op": "write", "path": "old.txt", "content": "new", "overwrite": True}))
    assert (ws / "old.txt").read_text() == "new"
    assert stat.S_IMODE(os.stat(ws / "old.txt").st_mode) == 0o640  # the mode is kept


@pytest.mark.parametrize(
    ("failing", "message"),
    [
        ({"op": "delete", "path": "missing.txt"}, "does not exist"),
        ({"op": "move", "from": "a.log", "to": "src"}, "already exists"),
        ({"op": "write", "path": "nodir/x.txt", "content": ""}, "'nodir' does not exist"),
        ({"op": "copy", "from": "src", "to": "src/inside"}, "into itself"),
        ({"op": "run", "argv": ["python3", "-c", "import sys; sys.exit(4)"]}, "exited with 4"),
        ({"op": "run", "argv": ["sleep", "20"], "timeout_s": 1}, "timed out"),
        ({"op": "mkdir", "path": "a.log/sub"}, "not a directory"),
    ],
)
def test_a_failing_step_rolls_back_everything_before_it(ws: Path, failing: dict[str, Any], message: str) -> None:
    before = tree(ws)
    with pytest.raises(StepFailed, match=message) as info:
        apply_plan(
            ws,
            plan(
                {"op": "mkdir", "path": "made"},
                {"op": "write", "path": "made/new.txt", "content": "new"},
                {"op": "patch", "path": "src/m.py", "find": "x", "replace": "z"},
                {"op": "delete", "path": "old.txt"},
                {"op": "copy", "from": "src", "to": "copy"},
                failing,
            ),
        )
    assert str(info.value).startswith("step 6 ")
    assert "the 5 earlier steps were rolled back" in str(info.value)
    assert tree(ws) == before
    assert [j.state for j in journals(ws)] == ["rolled-back"]
    assert not list(ws.rglob(".rs-tmp-*"))


def test_a_failed_apply_says_that_what_a_command_changed_stays(ws: Path) -> None:
    command = {"op": "run", "argv": ["sh", "-c", "echo v2 > old.txt; echo made > new.txt; exit 3"]}
    with pytest.raises(StepFailed) as info:
        apply_plan(ws, plan(command))
    assert str(info.value) == (
        "step 1 (run) failed: command 'sh' exited with 3; no earlier step had run, and what the command"
        " changed stays: files a run step writes itself are not journaled, so rolling back leaves them"
    )
    assert (ws / "old.txt").read_text() == "v2\n"
    assert (ws / "new.txt").read_text() == "made\n"
    made = {"op": "run", "argv": ["sh", "-c", "echo more > more.txt"]}
    with pytest.raises(StepFailed) as info:
        apply_plan(ws, plan({"op": "write", "path": "w.txt", "content": "w"}, made, {"op": "delete", "path": "gone"}))
    assert str(info.value).endswith(
        "; the 2 earlier steps were rolled back, but not what the command changed: files a run step writes"
        " itself are not journaled, so rolling back leaves them"
    )
    assert (ws / "more.txt").exists()
    assert not (ws / "w.txt").exists()


def test_undo_goes_back_one_plan_at_a_time(ws: Path) -> None:
    states = [tree(ws)]
    for index in range(3):
        apply_plan(ws, plan({"op": "write", "path": f"f{index}.txt", "content": str(index)}, goal=f"plan {index}"))
        states.append(tree(ws))
    for expected in reversed(states[:-1]):
        undo_last(ws)
        assert tree(ws) == expected
    with pytest.raises(Exception, match="nothing to undo"):
        undo_last(ws)
    assert [j.state for j in journals(ws)] == ["undone"] * 3
    assert [j.meta["plan"]["goal"] for j in journals(ws)] == ["plan 0", "plan 1", "plan 2"]


def test_undo_refuses_to_lose_later_edits(ws: Path) -> None:
    apply_plan(ws, plan({"op": "patch", "path": "src/m.py", "find": "x", "replace": "z"}))
    (ws / "src" / "m.py").write_text("edited by hand\n")
    with pytest.raises(StepFailed, match="changed after the plan was applied"):
        undo_last(ws)
    assert (ws / "src" / "m.py").read_text() == "edited by hand\n"


def test_undo_of_a_move_then_write_to_the_same_path(ws: Path) -> None:
    before = tree(ws)
    apply_plan(
        ws,
        plan(
            {"op": "move", "from": "old.txt", "to": "older.txt"},
            {"op": "write", "path": "old.txt", "content": "replacement"},
            {"op": "patch", "path": "old.txt", "find": "replace", "replace": "REPLACE"},
        ),
    )
    undo_last(ws)
    assert tree(ws) == before


def test_undo_keeps_what_it_displaces_in_the_trash(ws: Path) -> None:
    result = apply_plan(ws, plan({"op": "write", "path": "new.txt", "content": "made by the plan"}))
    undo_last(ws)
    trash = ws / ".routeshell" / "trash" / result.journal_id
    assert [p.read_text() for p in trash.iterdir()] == ["made by the plan"]


def test_limits_reach_run_steps(ws: Path) -> None:
    script = "open('big', 'wb').write(b'x' * 3 * 1024 * 1024)"
    with pytest.raises(StepFailed, match="exited with"):
        apply_plan(ws, plan({"op": "run", "argv": ["python3", "-c", script]}), limits=Limits(file_size_mb=1))


def test_dry_run_shows_diffs_and_changes_nothing(ws: Path) -> None:
    before = tree(ws)
    previews = preview_plan(
        ws,
        plan(
            {"op": "write", "path": "new.txt", "content": "hello\n"},
            {"op": "patch", "path": "new.txt", "find": "hello", "replace": "bye"},
            {"op": "patch", "path": "src/m.py", "find": "x", "replace": "z"},
            {"op": "move", "from": "new.txt", "to": "moved.txt"},
            {"op": "delete", "path": "moved.txt"},
            {"op": "delete", "path": "new.txt"},
        ),
    )
    assert tree(ws) == before
    assert previews[0].diff is not None
    assert "+hello" in previews[0].diff
    assert previews[1].diff is not None
    assert "-hello\n+bye" in previews[1].diff
    assert previews[2].diff is not None
    assert "-x = old\n+z = old" in previews[2].diff
    assert [p.problem for p in previews[:5]] == [None] * 5
    assert previews[5].problem is not None
    assert "does not exist" in previews[5].problem


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ([{"op": "write", "path": "nowhere/a.txt", "content": ""}], "'nowhere' does not exist"),
        ([{"op": "copy", "from": "src", "to": "nowhere/src"}], "'nowhere' does not exist"),
        ([{"op": "write", "path": "src/m.py/x", "content": ""}], "'src/m.py' is not a directory"),
        ([{"op": "mkdir", "path": "a/b"}, {"op": "write", "path": "a/b/c.txt", "content": ""}], None),
        ([{"op": "mkdir", "path": "a/b"}, {"op": "write", "path": "a/c.txt", "content": ""}], None),
    ],
)
def test_dry_run_reports_a_missing_directory_as_the_apply_would(
    ws: Path, steps: list[dict[str, Any]], problem: str | None
) -> None:
    document = plan(*steps)
    previews = preview_plan(ws, document)
    if problem is None:
        assert [p.problem for p in previews] == [None] * len(steps)
        apply_plan(ws, document)
        return
    assert previews[-1].problem is not None
    assert problem in previews[-1].problem
    with pytest.raises(StepFailed, match=problem):
        apply_plan(ws, document)


def test_only_one_apply_at_a_time(ws: Path) -> None:
    from engine.workspace.state import LockBusy, workspace_lock

    with workspace_lock(ws), pytest.raises(LockBusy, match="another routeshell"):
        apply_plan(ws, plan({"op": "write", "path": "n.txt", "content": ""}))


@pytest.mark.parametrize("after", [0, 1, 3])
def test_cancel_between_steps_rolls_back(ws: Path, after: int) -> None:
    from engine.plans.apply import Cancelled

    before = tree(ws)
    calls: list[int] = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > after

    steps = [{"op": "write", "path": f"f{index}.txt", "content": "x"} for index in range(5)]
    with pytest.raises(Cancelled, match=f"cancelled before step {after + 1}"):
        apply_plan(ws, plan(*steps), cancel=cancel)
    assert tree(ws) == before
    assert [j.state for j in journals(ws)] == ["rolled-back"]
