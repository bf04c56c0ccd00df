"""Every file-management op against hostile trees: names, links out, .git at any depth, hard links, FIFOs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import StepFailed, apply_plan
from engine.plans.dry_run import preview_plan
from engine.plans.expand import expand_plan
from engine.plans.model import InvalidPlan, parse_plan
from engine.plans.undo import undo_journal
from engine.workspace.sandbox import SandboxError
from tests.engine.plans.test_bulk_ops import snapshot

HOSTILE = ["new\nline.txt", "\x1b[31mred.txt", "[red]x[red].txt", os.fsdecode(b"bad\xff.txt"), " lead.txt", "-x.txt"]

OPS: list[dict[str, Any]] = [
    {"op": "move", "match": {"glob": "**/*.txt"}, "to": "moved"},
    {"op": "move", "match": {"glob": "in/**"}, "to": "moved", "keep_tree": True},
    {"op": "copy", "match": {"glob": "**/*.txt"}, "to": "copied", "keep_tree": True},
    {"op": "delete", "match": {"glob": "**/*.txt"}},
    {"op": "rename", "match": {"glob": "in/*.txt"}, "template": "{n:02}-{name}"},
    {"op": "rename", "match": {"glob": "in/*.txt"}, "find": "^(.)", "replace": r"\1\1"},
    {"op": "classify", "match": {"glob": "**/*.txt"}, "rules": [{"contains": "secret", "to": "s"},
                                                                  {"default": True, "to": "rest"}]},
    # The hard-linked pair is left out: its tags attribute is refused (test below).
    {"op": "tag", "match": {"glob": "**/*.txt", "exclude": ["hard.txt", "in/new*"]}, "tags": ["t1", "ünï"]},
    {"op": "archive", "match": {"glob": "in/**"}, "to": "all.tar.gz", "remove": True},
    {"op": "archive", "match": {"glob": "in/**"}, "to": "all.zip"},
]  # fmt: skip


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "in").mkdir(parents=True)
    for index, name in enumerate(HOSTILE):
        (root / "in" / name).write_text(f"file {index} secret\n" if index % 2 else f"file {index}\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.txt").write_text("outside\n")
    (root / "link-out").symlink_to(outside)
    (root / "in" / "dangling.txt").symlink_to(tmp_path / "nothing")
    (root / "sub" / ".git").mkdir(parents=True)
    (root / "sub" / ".git" / "config.txt").write_text("git\n")
    (root / "deep" / "x" / ".GIT").mkdir(parents=True)
    (root / "deep" / "x" / ".GIT" / "hook.txt").write_text("hook\n")
    os.mkfifo(root / "in" / "fifo.txt")
    os.link(root / "in" / HOSTILE[0], root / "hard.txt")
    os.setxattr(root / "hard.txt", "user.note", b"n")
    return root


def plan_of(*steps: dict[str, Any]) -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "steps": list(steps)}))


@pytest.mark.parametrize("step", OPS, ids=[f"{s['op']}-{i}" for i, s in enumerate(OPS)])
def test_each_op_on_a_hostile_tree_applies_and_undoes_bit_for_bit(root: Path, step: dict[str, Any]) -> None:
    outside = root.parent / "outside"
    before, outside_before = snapshot(root), snapshot(outside)
    plan = expand_plan(root, plan_of(step))
    touched = json.dumps(plan["steps"])
    for never in (".git", ".GIT", "link-out", "fifo.txt"):
        assert never not in touched, never
    assert [p.problem for p in preview_plan(root, plan) if p.problem] == []
    result = apply_plan(root, plan)
    assert snapshot(outside) == outside_before
    undo_journal(root, result.journal_id)
    assert snapshot(root) == before
    assert snapshot(outside) == outside_before


@pytest.mark.parametrize(
    "step",
    [
        {"op": "move", "match": {"glob": "in/*.txt"}, "to": "link-out"},
        {"op": "move", "match": {"glob": "in/*.txt"}, "to": "link-out/inner"},
        {"op": "copy", "paths": ["link-out/o.txt"], "to": "here"},
        {"op": "move", "match": {"glob": "in/*.txt"}, "to": "sub/.git/x"},
        {"op": "move", "match": {"glob": "in/*.txt"}, "to": "deep/x/.GIT"},
        {"op": "classify", "match": {"glob": "in/*.txt"}, "rules": [{"default": True, "to": "a/.git"}]},
        {"op": "rename", "match": {"glob": "in/*.txt"}, "template": ".git"},
        {"op": "tag", "paths": ["in/fifo.txt"], "tags": ["x"]},
        {"op": "tag", "paths": ["link-out"], "tags": ["x"]},
        {"op": "archive", "paths": ["in/fifo.txt"], "to": "f.zip"},
        {"op": "archive", "paths": ["in"], "to": "link-out/a.zip"},
        {"op": "delete", "paths": ["link-out/o.txt"]},
        {"op": "extract", "from": "in/dangling.txt", "to": "x"},
    ],
)
def test_hostile_targets_are_refused_and_nothing_changes(root: Path, step: dict[str, Any]) -> None:
    outside = root.parent / "outside"
    before, outside_before = snapshot(root), snapshot(outside)
    with pytest.raises((InvalidPlan, SandboxError, StepFailed)) as caught:
        apply_plan(root, plan_of(step))
    assert "\n" not in str(caught.value).replace("\\n", "")
    assert snapshot(root) == before
    assert snapshot(outside) == outside_before


def test_a_file_with_hard_links_is_never_tagged_through_its_inode(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "linked.txt"
    outside.write_text("outside\n")
    os.link(outside, root / "linked.txt")
    before = snapshot(root)
    for name in ("hard.txt", "linked.txt"):
        with pytest.raises(StepFailed, match="hard links"):
            apply_plan(root, plan_of({"op": "tag", "paths": [name], "tags": ["pwn"]}))
    assert snapshot(root) == before
    assert "user.xdg.tags" not in os.listxattr(outside)
    # A Markdown file keeps its tags in its text, written by rename: the other name keeps the old inode.
    (root / "note.md").write_text("# n\n")
    os.link(root / "note.md", tmp_path / "outside" / "note.md")
    apply_plan(root, plan_of({"op": "tag", "paths": ["note.md"], "tags": ["t"]}))
    assert (tmp_path / "outside" / "note.md").read_text() == "# n\n"


@pytest.mark.parametrize("files", [20, 400])
def test_a_bulk_move_on_a_full_disk_uses_the_reserve_or_changes_nothing(tmp_path: Path, files: int) -> None:
    from engine.workspace.state import StateError
    from tests.helpers import fill_disk, small_disk

    with small_disk(tmp_path / "disk", "4m") as disk:
        root = disk / "ws"
        (root / "in").mkdir(parents=True)
        for index in range(files):
            (root / "in" / f"f{index:03}.txt").write_text("x")
        apply_plan(root, plan_of({"op": "mkdir", "path": "out"}))  # the state directory and its reserve exist
        fill_disk(root)
        before = snapshot(root)
        # A new directory needs a block the full disk does not have: refused, in one line, nothing changed.
        with pytest.raises(StateError) as caught:
            apply_plan(root, plan_of({"op": "move", "match": {"glob": "in/*.txt"}, "to": "new"}))
        assert "No space left" in str(caught.value)
        assert "\n" not in str(caught.value)
        assert snapshot(root) == before
        # Renames into a directory that exists need no room for data: the reserve holds their journal.
        apply_plan(root, plan_of({"op": "move", "match": {"glob": "in/*.txt"}, "to": "out"}))
        assert len(list((root / "out").iterdir())) == files
        assert not list((root / "in").iterdir())
