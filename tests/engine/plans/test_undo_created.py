"""Undo never trashes later work in what a plan created: copies, made directories, new files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import StepFailed, apply_plan, undo_last
from engine.plans.model import parse_plan
from tests.helpers import tree


def plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "steps": list(steps)}))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "m.py").write_text("x = 1\n")
    (root / "src" / "pkg" / "deep.py").write_text("deep\n")
    (root / "a.txt").write_text("alpha\n")
    return root


def test_an_edited_copy_blocks_the_undo_and_stays(ws: Path) -> None:
    apply_plan(ws, plan({"op": "copy", "from": "a.txt", "to": "b.txt"}))
    (ws / "b.txt").write_text("my edit\n")
    with pytest.raises(StepFailed, match=r"'b.txt' changed after the plan copied it.*then undo"):
        undo_last(ws)
    assert (ws / "b.txt").read_text() == "my edit\n"


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda lib: (lib / "pkg" / "deep.py").write_text("edited\n"), "'lib/pkg/deep.py' changed"),
        (lambda lib: (lib / "pkg" / "mine.py").write_text("mine\n"), "'lib/pkg/mine.py' was added"),
        (lambda lib: (lib / "mine").mkdir(), "'lib/mine' was added"),
    ],
)
def test_later_work_in_a_copied_directory_blocks_the_undo(ws: Path, edit: Any, named: str) -> None:
    apply_plan(ws, plan({"op": "copy", "from": "src", "to": "lib"}))
    edit(ws / "lib")
    after_edit = tree(ws)
    with pytest.raises(StepFailed, match=named):
        undo_last(ws)
    assert tree(ws) == after_edit


def test_the_plans_own_changes_to_its_copy_do_not_block_the_undo(ws: Path) -> None:
    before = tree(ws)
    apply_plan(
        ws,
        plan(
            {"op": "copy", "from": "src", "to": "lib"},
            {"op": "patch", "path": "lib/pkg/deep.py", "find": "deep", "replace": "changed"},
            {"op": "delete", "path": "lib/m.py"},
            {"op": "write", "path": "lib/new.py", "content": "new\n"},
            {"op": "move", "from": "a.txt", "to": "lib/a.txt"},
            {"op": "mkdir", "path": "lib/made/deeper"},
        ),
    )
    undo_last(ws)
    assert tree(ws) == before


def test_a_copy_removed_by_hand_undoes_without_complaint(ws: Path) -> None:
    before = tree(ws)
    apply_plan(ws, plan({"op": "copy", "from": "src", "to": "lib"}))
    shutil.rmtree(ws / "lib")
    undo_last(ws)
    assert tree(ws) == before


def test_a_file_put_in_a_made_directory_blocks_the_undo(ws: Path) -> None:
    apply_plan(ws, plan({"op": "mkdir", "path": "made/inner"}, {"op": "write", "path": "made/x", "content": ""}))
    (ws / "made" / "inner" / "mine.txt").write_text("mine\n")
    with pytest.raises(StepFailed, match=r"'made/inner/mine.txt' was put in the directory 'made/inner'.*then undo"):
        undo_last(ws)
    assert (ws / "made" / "inner" / "mine.txt").read_text() == "mine\n"
    assert (ws / "made" / "x").exists()


def test_an_edited_new_file_blocks_the_undo(ws: Path) -> None:
    apply_plan(ws, plan({"op": "write", "path": "new.txt", "content": "by the plan\n"}))
    (ws / "new.txt").write_text("by hand\n")
    with pytest.raises(StepFailed, match=r"'new\.txt' changed after the plan was applied"):
        undo_last(ws)
    assert (ws / "new.txt").read_text() == "by hand\n"
