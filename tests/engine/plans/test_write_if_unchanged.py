"""A write with ``if_sha256`` replaces a file only while it still holds what the new content was
made from (an edit in $EDITOR): a change made by something else meanwhile is never lost."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import StepFailed, apply_plan
from engine.plans.audit import read_audit
from engine.plans.dry_run import preview_plan
from engine.plans.file_plans import keep_edit, write_file
from engine.plans.journal import journals
from engine.plans.model import InvalidPlan, parse_plan
from engine.workspace.sandbox import Workspace


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.txt").write_bytes(b"one\r\n")
    return root


def test_the_write_applies_while_the_file_holds_what_was_read(ws: Path) -> None:
    apply_plan(ws, write_file("a.txt", "one\r\ntwo\r\n", if_sha256=digest(b"one\r\n")))
    assert (ws / "a.txt").read_bytes() == b"one\r\ntwo\r\n"


def test_a_file_changed_since_it_was_read_is_not_replaced(ws: Path) -> None:
    plan = write_file("a.txt", "one\r\nedited\r\n", if_sha256=digest(b"one\r\n"))
    (ws / "a.txt").write_bytes(b"one\r\nsomeone else\r\n")
    [preview] = preview_plan(ws, plan)
    assert "no longer holds the content it was changed from" in str(preview.problem)
    with pytest.raises(StepFailed, match=r"'a\.txt' no longer holds the content it was changed from .*nothing"):
        apply_plan(ws, plan)
    assert (ws / "a.txt").read_bytes() == b"one\r\nsomeone else\r\n"
    # Refused before its journal was started: nothing in plan history looks like an edit that failed.
    assert journals(ws) == []
    [failed] = read_audit(ws)[0]
    assert (failed.action, failed.plan_id) == ("failed", None)
    assert "no longer holds the content it was changed from" in str(failed.reason)


def test_leading_preconditions_are_checked_before_the_journal_and_later_ones_as_earlier_steps_leave_it(
    ws: Path,
) -> None:
    (ws / "b.txt").write_bytes(b"b\n")
    plan = write_file("a.txt", "A\n", if_sha256=digest(b"one\r\n"))
    plan["steps"].append({**write_file("b.txt", "B\n", if_sha256=digest(b"read before\n"))["steps"][0]})
    with pytest.raises(StepFailed, match=r"^step 2 \(write 'b\.txt'\) failed: 'b\.txt' no longer holds .*nothing was"):
        apply_plan(ws, plan)
    assert journals(ws) == []
    assert [(ws / name).read_bytes() for name in ("a.txt", "b.txt")] == [b"one\r\n", b"b\n"]
    # After a step that writes the file, its precondition is about what that step leaves there.
    plan = write_file("a.txt", "edited\n", if_sha256=digest(b"two\n"))
    plan["steps"].insert(0, {"op": "write", "path": "a.txt", "content": "two\n", "overwrite": True})
    apply_plan(ws, plan)
    assert (ws / "a.txt").read_bytes() == b"edited\n"


def test_a_file_removed_since_it_was_read_is_not_made_again(ws: Path) -> None:
    plan = write_file("a.txt", "edited\n", if_sha256=digest(b"one\r\n"))
    (ws / "a.txt").unlink()
    with pytest.raises(StepFailed, match=r"'a\.txt' no longer exists"):
        apply_plan(ws, plan)
    assert not (ws / "a.txt").exists()


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        ({"if_sha256": "0" * 64}, 'needs "overwrite": true'),
        ({"if_sha256": "ABC", "overwrite": True}, "/steps/0/if_sha256"),
    ],
)
def test_a_precondition_that_cannot_hold_is_refused_at_validation(step: dict[str, Any], reason: str) -> None:
    document = {"version": 1, "steps": [{"op": "write", "path": "a.txt", "content": "x", **step}]}
    with pytest.raises(InvalidPlan, match=reason):
        parse_plan(json.dumps(document))


def test_a_kept_edit_goes_beside_the_file_and_replaces_nothing(ws: Path) -> None:
    (ws / "sub").mkdir()
    (ws / "sub" / "n.md").write_text("n")
    (ws / "sub" / "n (edited).md").write_text("taken")
    with Workspace(ws) as workspace:
        plan = keep_edit(workspace, "sub/n.md", "the edit\r\n")
    assert plan["goal"] == "keep the edit of sub/n.md as sub/n (edited) (1).md"
    apply_plan(ws, plan)
    assert (ws / "sub" / "n (edited) (1).md").read_bytes() == b"the edit\r\n"
    assert (ws / "sub" / "n (edited).md").read_text() == "taken"
