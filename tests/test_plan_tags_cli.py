"""Tags a plan cannot change, as a user meets them: a file read-only for them or owned by someone else is
named before anything changes, a rollback needs no write where the old tags are still there, and an
undo that would have to change such a file's tags is refused before it starts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from engine.files.tags import XATTR
from engine.plans.apply import apply_plan, recover
from engine.plans.journal import Journal, history
from engine.plans.model import parse_plan
from engine.plans.undo import undo_journal
from tests.helpers import assert_one_line_error, run_as_a_user, tree


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


def plan_file(directory: Path, *steps: dict[str, Any]) -> str:
    path = directory / "plan.json"
    path.write_text(json.dumps({"version": 1, "steps": list(steps)}))
    return str(path)


def plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "steps": list(steps)}))


def tags_attribute(path: Path) -> bytes | None:
    try:
        return os.getxattr(path, XATTR)
    except OSError:
        return None


def test_a_file_whose_tags_cannot_be_changed_is_named_before_anything_changes(ws: Path, tmp_path: Path) -> None:
    (ws / "notes.txt").write_text("a\n")
    (ws / "notes.txt").chmod(0o444)
    (ws / "other.txt").write_text("b\n")
    (ws / "theirs.md").write_text("# t\n")
    os.chown(ws / "theirs.md", 65534, 65534)  # 0644: this user may read it, not rewrite it
    before = tree(ws)
    tag = plan_file(tmp_path, {"op": "tag", "paths": ["other.txt", "notes.txt", "theirs.md"], "tags": ["todo"]})
    dry = run_as_a_user("plan", "apply", tag, "--dry-run", "--workspace", str(ws))
    assert_one_line_error(dry, 1, "step 1 (tag) would fail: cannot change the tags of 'notes.txt': it is read-only")
    assert "would fail: cannot change the tags of 'theirs.md': it belongs to another user" in dry.stdout, dry
    applied = run_as_a_user("plan", "apply", tag, "--yes", "--workspace", str(ws))
    assert_one_line_error(applied, 1, "cannot change the tags of 'notes.txt'", "nothing was changed")
    assert tree(ws) == before
    assert tags_attribute(ws / "other.txt") is None
    assert [row.state for row in history(ws)] == []


def test_a_rollback_writes_no_tags_where_the_old_ones_are_still_there(ws: Path) -> None:
    # Killed mid-apply: step 1 set its tags, step 2's record was written but its tags were not.
    for name in ("done.txt", "never.txt"):
        (ws / name).write_text(f"{name}\n")
    result = apply_plan(ws, plan({"op": "tag", "paths": ["done.txt", "never.txt"], "tags": ["todo"]}))
    os.removexattr(ws / "never.txt", XATTR)
    Journal(ws, result.journal_id).set_state("applying")
    for name in ("done.txt", "never.txt"):
        (ws / name).chmod(0o444)
    recovery = run_as_a_user("plan", "history", "--workspace", str(ws))
    # never.txt needs nothing; done.txt does, and the warning names it.
    [warning] = recovery.stderr.splitlines()
    assert "cannot finish rolling back" in warning
    assert "cannot change the tags of 'done.txt': Permission denied" in warning
    assert Journal(ws, result.journal_id).state == "applying"
    (ws / "done.txt").chmod(0o644)
    recovered = run_as_a_user("plan", "history", "--workspace", str(ws))
    assert recovered.returncode == 0, recovered
    assert f"{result.journal_id}  rolled-back" in recovered.stdout
    assert tags_attribute(ws / "done.txt") is None


def test_an_undo_that_must_change_a_read_only_files_tags_is_refused_before_it_starts(ws: Path) -> None:
    locked = "a\x1b[2J.txt"
    (ws / locked).write_text("a\n")
    (ws / "b.txt").write_text("b\n")
    (ws / "tagged.txt").write_text("c\n")
    os.setxattr(ws / "tagged.txt", XATTR, b"red")
    result = apply_plan(ws, plan({"op": "tag", "paths": [locked, "tagged.txt"], "tags": ["red"]},
                                 {"op": "delete", "path": "b.txt"}))  # fmt: skip
    (ws / locked).chmod(0o444)
    (ws / "tagged.txt").chmod(0o444)  # its undo changes nothing: it had the tag before
    dry = run_as_a_user("plan", "undo", "--dry-run", "--workspace", str(ws))
    [blocked] = [line for line in dry.stdout.splitlines() if "! blocked" in line]
    assert "cannot change the tags of 'a\\x1b[2J.txt': it is read-only" in blocked, dry
    assert "\x1b" not in dry.stdout + dry.stderr
    assert_one_line_error(dry, 1, "cannot be undone now: make those files writable")
    undo = run_as_a_user("plan", "undo", "--workspace", str(ws))
    assert_one_line_error(undo, 1, f"cannot undo plan {result.journal_id}: cannot change the tags of 'a\\x1b[2J.txt'")
    assert not (ws / "b.txt").exists()
    assert Journal(ws, result.journal_id).state == "applied"
    (ws / locked).chmod(0o644)
    undo_journal(ws)
    assert (ws / "b.txt").read_text() == "b\n"
    assert tags_attribute(ws / locked) is None
    assert tags_attribute(ws / "tagged.txt") == b"red"
    assert recover(ws) == []


def test_a_file_of_another_user_is_named_before_a_write_append_or_patch_changes_anything(
    ws: Path, tmp_path: Path
) -> None:
    (ws / "theirs.txt").write_text("hi\n")
    os.chown(ws / "theirs.txt", 65534, 65534)  # 0644: this user may read it, not rewrite it
    (ws / "mine.txt").write_text("mine\n")
    (ws / "mine.txt").chmod(0o444)  # their own read-only file: a forced save may replace it
    before = tree(ws)
    for step in ({"op": "write", "path": "theirs.txt", "content": "new\n", "overwrite": True},
                 {"op": "append", "path": "theirs.txt", "content": "more\n"},
                 {"op": "patch", "path": "theirs.txt", "find": "hi", "replace": "ho"}):  # fmt: skip
        plan = plan_file(tmp_path, {"op": "write", "path": "new.txt", "content": "x\n"}, step)
        why = "cannot change 'theirs.txt': it belongs to another user and is read-only for this one"
        dry = run_as_a_user("plan", "apply", plan, "--dry-run", "--workspace", str(ws))
        assert_one_line_error(dry, 1, f"step 2 ({step['op']}) would fail: {why}")
        applied = run_as_a_user("plan", "apply", plan, "--yes", "--workspace", str(ws))
        assert_one_line_error(applied, 1, why, "nothing was changed")
        assert tree(ws) == before
    mine = plan_file(tmp_path, {"op": "write", "path": "mine.txt", "content": "saved\n", "overwrite": True})
    assert run_as_a_user("plan", "apply", mine, "--yes", "--workspace", str(ws)).returncode == 0
    assert (ws / "mine.txt").read_text() == "saved\n"
