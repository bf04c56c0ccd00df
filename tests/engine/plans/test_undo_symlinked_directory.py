"""Undo, the recovery of an interrupted undo and ``trash restore`` change nothing through a symlink.

Each directory a plan wrote in was a real one when it was applied (no step goes through a symlink).
When a symlink is put in place of one of them since, undoing through it would change where the link
leads: files the plan never touched. Each refuses in one line naming the symlink, changes nothing,
and works once the directory is back.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from engine.errors import UsageError
from engine.plans.apply import apply_plan
from engine.plans.journal import Journal
from engine.plans.model import parse_plan
from engine.plans.trash import list_trash, restore
from engine.plans.undo import undo_journal, undo_preview
from engine.workspace.state import StateError
from tests.helpers import tree

REFUSAL = (
    "'d' is now a symlink{}, and was a directory when the plan was applied: undo changes nothing through a"
    " symlink; put the directory back in its place, then undo"
)

STEPS = [
    {"op": "write", "path": "d/sub/x.txt", "content": "plan\n"},
    {"op": "write", "path": "d/sub/f.txt", "content": "plan\n", "overwrite": True},
    {"op": "append", "path": "d/sub/f.txt", "content": "more\n"},
    {"op": "mkdir", "path": "d/sub/new"},
    {"op": "delete", "path": "d/sub/f.txt"},
    {"op": "move", "from": "a.txt", "to": "d/sub/a.txt"},
    {"op": "move", "from": "d/sub/f.txt", "to": "f.txt"},
    {"op": "copy", "from": "a.txt", "to": "d/sub/a.txt"},
    {"op": "tag", "path": "d/sub/f.txt", "tags": ["x"]},
    {"op": "archive", "paths": ["a.txt"], "to": "d/sub/a.zip"},
    {"op": "extract", "from": "z.zip", "to": "d/sub"},
]
IDS = ["write-new", "overwrite", "append", "mkdir", "delete", "move-in", "move-out", "copy", "tag", "archive",
       "extract"]  # fmt: skip


@pytest.fixture
def ws(tmp_path: Path, resolution: str) -> Path:
    root = tmp_path / "ws"
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "sub" / "f.txt").write_text("f\n")
    (root / "a.txt").write_text("a\n")
    with zipfile.ZipFile(root / "z.zip", "w") as archive:
        archive.writestr("zz.txt", "z\n")
    return root


def plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "goal": "t", "steps": list(steps)}))


def point_d_elsewhere(root: Path, target: str = "twin") -> None:
    """Move ``d`` aside, leave a copy of it at ``twin`` (so that undoing there finds just what the
    plan left) and put a symlink to ``target`` where ``d`` was."""
    os.rename(root / "d", root / "d_real")
    shutil.copytree(root / "d_real", root / "twin", symlinks=True)
    (root / "d").symlink_to(target)


def put_d_back(root: Path) -> None:
    (root / "d").unlink()
    os.rename(root / "d_real", root / "d")
    shutil.rmtree(root / "twin")


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_undo_through_a_symlink_put_in_place_of_a_directory_is_refused_naming_it(
    ws: Path, step: dict[str, Any]
) -> None:
    before_apply = tree(ws)
    result = apply_plan(ws, plan(step))
    point_d_elsewhere(ws)
    before = tree(ws)
    preview = undo_preview(ws)
    assert preview.blocked[0] == REFUSAL.format("")
    assert [line for line in preview.blocked if "symlink" in line] == [REFUSAL.format("")]
    with pytest.raises(StateError) as info:
        undo_journal(ws)
    assert str(info.value).startswith(f"cannot undo plan {result.journal_id}: {REFUSAL.format('')}")
    assert tree(ws) == before  # the copy the link leads to is untouched
    assert Journal(ws, result.journal_id).state == "applied"
    put_d_back(ws)  # as the refusal says
    assert undo_preview(ws).blocked == []
    undo_journal(ws)
    assert tree(ws) == before_apply


@pytest.mark.parametrize("step", [STEPS[0], STEPS[8]], ids=["write", "tag"])
def test_a_symlink_deeper_on_the_way_and_one_leading_outside_are_named(
    ws: Path, tmp_path: Path, step: dict[str, Any]
) -> None:
    apply_plan(ws, plan(step))
    os.rename(ws / "d" / "sub", ws / "sub_real")
    (ws / "d" / "sub").symlink_to("../sub_real")
    assert undo_preview(ws).blocked == [REFUSAL.format("").replace("'d'", "'d/sub'")]
    (ws / "d" / "sub").unlink()
    outside = tmp_path / "outside"
    shutil.copytree(ws / "sub_real", outside / "sub")
    os.rename(ws / "d", ws / "d_real")
    (ws / "d").symlink_to(outside)
    before, there = tree(ws), tree(outside)
    assert undo_preview(ws).blocked == [REFUSAL.format(" leading outside the workspace")]
    with pytest.raises(StateError, match="leading outside the workspace"):
        undo_journal(ws)
    assert (tree(ws), tree(outside)) == (before, there)


@pytest.mark.parametrize("state", ["undoing", "applying"])
@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_recovery_of_an_interrupted_undo_or_apply_goes_through_no_symlink(
    ws: Path, step: dict[str, Any], state: str
) -> None:
    before_apply = tree(ws)
    result = apply_plan(ws, plan(step))
    # What a kill -9 in the middle of an undo (or of the apply) leaves: the journal says so. The
    # recovery then carries the undo out with no check before it: only the way it opens paths stops it.
    Journal(ws, result.journal_id).set_state(state)
    point_d_elsewhere(ws)
    before = tree(ws)
    with pytest.raises(StateError) as info:
        undo_journal(ws)
    message = str(info.value)
    assert f"cannot finish rolling back plan {result.journal_id}, interrupted while {state}: " in message
    assert REFUSAL.format("") in message
    assert "\n" not in message
    assert tree(ws) == before
    put_d_back(ws)
    with pytest.raises(UsageError, match="nothing to undo"):
        undo_journal(ws)  # the recovery finished, and nothing is left applied
    assert tree(ws) == before_apply


def test_trash_restore_puts_nothing_back_through_a_symlink(ws: Path) -> None:
    apply_plan(ws, plan({"op": "delete", "path": "d/sub/f.txt"}))
    [item] = list_trash(ws)
    os.rename(ws / "d", ws / "d_real")
    (ws / "d").symlink_to("d_real")
    before = tree(ws)
    with pytest.raises(UsageError) as info:
        restore(ws, item.id)
    assert str(info.value).startswith(
        f"cannot restore {item.id}: 'd' is now a symlink, and was a directory when the item was deleted: nothing"
        " is put back through a symlink; put the directory back in its place, or copy the item out of "
    )
    assert tree(ws) == before
    (ws / "d").unlink()
    os.rename(ws / "d_real", ws / "d")
    restore(ws, item.id)
    assert (ws / "d" / "sub" / "f.txt").read_text() == "f\n"
