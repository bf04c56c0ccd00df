"""A journal is trusted no further than a plan: a crafted or cut-short one is damaged, and nothing
is written on its word (recovery, undo, trash restore), least of all into a ``.git``."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.errors import UsageError
from engine.plans.apply import apply_plan, recover
from engine.plans.journal import Journal, history, journals
from engine.plans.model import parse_plan
from engine.plans.trash import list_trash, restore
from engine.plans.undo import undo_journal, undo_preview
from engine.workspace.state import StateError
from tests.helpers import read_only_view, tree

JOURNAL_ID = "00001-20260101T000000"
HOOK = b"#!/bin/sh\necho PWNED\n"


def plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "goal": "a test plan", "steps": list(steps)}))


def crafted(ws: Path, steps: list[dict[str, Any]], records: list[dict[str, Any]], state: str) -> Journal:
    """A journal made by hand, as a cloned repository could carry one; step 0's backup and trash hold a hook."""
    journal = Journal(ws, JOURNAL_ID)
    journal.backup_dir.mkdir(parents=True)
    journal.trash_dir.mkdir(parents=True)
    meta = {"id": JOURNAL_ID, "started": 1767225600.0, "origin": None, "via": "cli",
            "plan": {"version": 1, "goal": "fix typo", "steps": steps}}  # fmt: skip
    (journal.dir / "plan.json").write_text(json.dumps(meta))
    (journal.dir / "log.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    (journal.dir / "state").write_text(state)
    for place in (journal.backup_dir / "0", journal.trash_dir / "0"):
        place.write_bytes(HOOK)
        place.chmod(0o755)
    return journal


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / ".git" / "hooks").mkdir(parents=True)
    (root / "sub" / ".GIT").mkdir(parents=True)
    (root / "nested" / ".git" / "hooks").mkdir(parents=True)
    (root / "README").write_text("readme\n")
    return root


@pytest.mark.parametrize(
    ("step_path", "record_path"),
    [
        ("README", ".git/hooks/post-checkout"),  # the record differs from its step
        ("README", "sub/.GIT/config"),  # in any letter case
        ("README", "other.txt"),  # a harmless path, but not its step's
        (".git/hooks/post-checkout", ".git/hooks/post-checkout"),  # the plan itself breaks the rules
    ],
)
def test_recovery_writes_nothing_for_a_journal_whose_record_is_not_its_steps(
    ws: Path, step_path: str, record_path: str
) -> None:
    steps = [{"op": "write", "path": step_path, "content": "x", "overwrite": True}]
    journal = crafted(ws, steps, [{"i": 0, "op": "write", "path": record_path, "existed": True, "mode": 493,
                                   "sha": "00"}], "applying")  # fmt: skip
    before = tree(ws)
    with pytest.raises(StateError, match=rf"journal {JOURNAL_ID} is damaged: record 1 .*mv '{journal.dir}'"):
        recover(ws)
    assert tree(ws) == before
    assert journal.state == "applying"
    assert (journal.backup_dir / "0").read_bytes() == HOOK
    [row] = history(ws)
    assert row.state == "damaged"
    assert "is damaged: record 1" in (row.problem or "")


@pytest.mark.parametrize(
    ("step_path", "record_path"),
    [("old.txt", ".git/hooks/pre-commit"), (".git/hooks/pre-commit", ".git/hooks/pre-commit")],
)
def test_undo_writes_nothing_for_a_crafted_delete(ws: Path, step_path: str, record_path: str) -> None:
    crafted(ws, [{"op": "delete", "path": step_path}], [{"i": 0, "op": "delete", "path": record_path}], "applied")
    before = tree(ws)
    for attempt in (lambda: undo_journal(ws), lambda: undo_journal(ws, JOURNAL_ID), lambda: undo_preview(ws)):
        with pytest.raises(StateError, match=rf"cannot be undone: journal {JOURNAL_ID} is damaged: record 1"):
            attempt()
    assert tree(ws) == before
    assert [journal.state for journal in journals(ws)] == ["applied"]


def test_trash_restore_writes_nothing_for_a_crafted_delete(ws: Path) -> None:
    crafted(ws, [{"op": "delete", "path": "old.txt"}],
            [{"i": 0, "op": "delete", "path": "nested/.git/hooks/pre-commit"}], "applied")  # fmt: skip
    before = tree(ws)
    [item] = list_trash(ws)
    assert item.origin is None
    assert "its journal is damaged" in item.why
    with pytest.raises(StateError, match=rf"cannot restore {JOURNAL_ID}/0: journal {JOURNAL_ID} is damaged"):
        restore(ws, f"{JOURNAL_ID}/0")
    assert tree(ws) == before


def test_undo_never_writes_through_a_symlink_put_in_place_of_a_directory(ws: Path) -> None:
    (ws / "d").mkdir()
    (ws / "d" / "pre-commit").write_bytes(HOOK)
    result = apply_plan(ws, plan({"op": "delete", "path": "d/pre-commit"}))
    (ws / "d").rmdir()
    (ws / "d").symlink_to(".git/hooks")
    preview = undo_preview(ws)
    refusal = (
        "'d' is now a symlink, and was a directory when the plan was applied: undo changes nothing through a"
        " symlink; put the directory back in its place, then undo"
    )
    assert preview.blocked == [refusal]
    with pytest.raises(StateError) as info:
        undo_journal(ws)
    assert str(info.value) == f"cannot undo plan {result.journal_id}: {refusal}"
    assert not (ws / ".git" / "hooks" / "pre-commit").exists()
    assert Journal(ws, result.journal_id).state == "applied"
    with pytest.raises(UsageError, match=r"'d' is now a symlink, .*: nothing is put back through a symlink"):
        restore(ws, f"{result.journal_id}/0")
    assert not (ws / ".git" / "hooks" / "pre-commit").exists()


def test_real_journals_still_undo_recover_and_restore(ws: Path) -> None:
    (ws / "nested" / "old.txt").write_text("old\n")
    steps = (
        {"op": "mkdir", "path": "m/n"},
        {"op": "write", "path": "README", "content": "new\n", "overwrite": True},
        {"op": "move", "from": "nested/old.txt", "to": "m/n/old.txt"},
        {"op": "copy", "from": ".git/hooks", "to": "m/hooks"},  # a plan may read a .git
        {"op": "delete", "path": "m/n/old.txt"},
    )
    before = tree(ws)
    first = apply_plan(ws, plan(*steps))
    assert undo_preview(ws).blocked == []
    undo_journal(ws)
    assert tree(ws) == before
    second = apply_plan(ws, plan(*steps))
    Journal(ws, second.journal_id).set_state("applying")  # killed before its state was written
    assert recover(ws) == [second.journal_id]
    assert tree(ws) == before
    third = apply_plan(ws, plan({"op": "delete", "path": "nested/old.txt"}))
    restore(ws, f"{third.journal_id}/0")
    assert (ws / "nested" / "old.txt").read_text() == "old\n"
    assert [row.state for row in history(ws)] == ["undone", "rolled-back", "applied"]
    assert first.journal_id < second.journal_id


def test_an_applied_journal_with_a_record_cut_short_is_damaged(ws: Path) -> None:
    result = apply_plan(ws, plan({"op": "write", "path": "made.txt", "content": "m"}))
    journal = Journal(ws, result.journal_id)
    log = journal.dir / "log.jsonl"
    log.write_bytes(log.read_bytes()[:15])
    [row] = history(ws)
    assert row.state == "damaged"
    assert f"journal {journal.id} is damaged: line 1 of {log} is not a whole step record" in (row.problem or "")
    with pytest.raises(StateError, match=f"the newest applied plan, {journal.id}, cannot be undone: .* is damaged"):
        undo_journal(ws)
    log.write_bytes(b"")  # no record at all: every step ran, so each must have one
    with pytest.raises(StateError, match="holds 0 step records, but all 1 steps of its plan ran"):
        undo_journal(ws, journal.id)
    assert (ws / "made.txt").read_text() == "m"
    assert journal.state == "applied"


def test_a_torn_last_record_of_an_interrupted_apply_is_still_rolled_back(ws: Path) -> None:
    before = tree(ws)
    result = apply_plan(ws, plan({"op": "write", "path": "made.txt", "content": "m"},
                                 {"op": "delete", "path": "README"}))  # fmt: skip
    journal = Journal(ws, result.journal_id)
    journal.set_state("applying")
    (ws / "README").write_text("readme\n")  # as if the delete had not run: killed while its record was written
    (ws / ".routeshell" / "trash" / journal.id / "1").unlink()
    lines = (journal.dir / "log.jsonl").read_bytes().splitlines(keepends=True)
    (journal.dir / "log.jsonl").write_bytes(lines[0] + lines[1][:10])
    assert recover(ws) == [journal.id]
    assert tree(ws) == before


def test_an_undo_into_a_read_only_directory_is_refused_before_it_starts(ws: Path) -> None:
    (ws / "sub" / "b.txt").write_text("b\n")
    result = apply_plan(ws, plan({"op": "delete", "path": "sub/b.txt"}))
    with read_only_view(ws / "sub", ws / "sub"):
        preview = undo_preview(ws)
        assert preview.blocked == [
            "the directory 'sub' is read-only, and undoing the plan changes what is in it; make it writable, then undo"
        ]
        assert preview.hint.startswith("make those directories writable")
        with pytest.raises(StateError, match=rf"cannot undo plan {result.journal_id}: the directory 'sub' is read"):
            undo_journal(ws)
        assert Journal(ws, result.journal_id).state == "applied"
    undo_journal(ws)
    assert (ws / "sub" / "b.txt").read_text() == "b\n"
    assert os.path.isdir(ws / "sub" / ".GIT")


@pytest.mark.parametrize("place", ["trash", "trash/ID", "journal/ID/backup"])
@pytest.mark.parametrize("state", ["applied", "undoing"])
def test_undo_and_recovery_act_through_no_symlink_in_the_state_directory(
    ws: Path, tmp_path: Path, place: str, state: str
) -> None:
    """A plan that wrote one file and rewrote another: its undo moves the first to the trash and
    puts the second back from its backup. Where the trash, its part of it or the backup is a symlink
    (to a copy outside, as a cloned repository could carry), nothing is read or written there."""
    (ws / "notes.txt").write_text("old\n")
    rewrite = {"op": "write", "path": "notes.txt", "content": "changed\n", "overwrite": True}
    result = apply_plan(ws, plan({"op": "write", "path": "new.txt", "content": "new\n"}, rewrite))
    journal = Journal(ws, result.journal_id)
    journal.set_state(state)  # "undoing": what a kill -9 in the middle of an undo leaves
    real = ws / ".routeshell" / place.replace("ID", result.journal_id)
    real.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside"
    shutil.copytree(real, outside)
    shutil.rmtree(real)
    real.symlink_to(outside)
    before, there = tree(ws), tree(outside)
    expected = rf"{re.escape(str(real))} is not a directory \(a symlink or a file\); move it aside \(mv "
    with pytest.raises(StateError, match=expected):
        undo_journal(ws)
    if state == "applied":
        with pytest.raises(StateError, match=expected):
            undo_preview(ws)
    assert (tree(ws), tree(outside)) == (before, there)
    real.unlink()  # as the message says (the copy is what was there)
    shutil.copytree(outside, real)
    if state == "applied":
        undo_journal(ws)
    else:
        recover(ws)
    assert not (ws / "new.txt").exists()
    assert (ws / "notes.txt").read_text() == "old\n"
    assert tree(outside) == there


def test_trash_restore_takes_nothing_through_a_symlinked_part_of_the_trash(ws: Path, tmp_path: Path) -> None:
    result = apply_plan(ws, plan({"op": "delete", "path": "README"}))
    [item] = list_trash(ws)
    real = ws / ".routeshell" / "trash" / result.journal_id
    outside = tmp_path / "outside"
    shutil.copytree(real, outside)
    shutil.rmtree(real)
    real.symlink_to(outside)
    with pytest.raises(StateError, match=rf"{re.escape(str(real))} is not a directory \(a symlink or a file\)"):
        restore(ws, item.id)
    assert not (ws / "README").exists()
    assert (outside / "0").read_text() == "readme\n"


@pytest.mark.parametrize("op", [["delete"], {"op": "delete"}])
def test_a_journal_whose_step_has_a_list_or_an_object_for_its_op_is_damaged(ws: Path, op: Any) -> None:
    crafted(ws, [{"op": op, "path": "README"}], [{"i": 0, "op": "delete", "path": "README"}], "applied")
    before = tree(ws)
    for attempt in (lambda: undo_journal(ws), lambda: undo_preview(ws)):
        with pytest.raises(
            StateError, match=rf"journal {JOURNAL_ID} is damaged: step 1 of its plan is not a plan step"
        ):
            attempt()
    assert tree(ws) == before
    [row] = history(ws)
    assert row.state == "damaged"


def test_a_rolled_back_journal_whose_step_has_a_list_for_its_op_does_not_stop_the_next_plan(ws: Path) -> None:
    # (A rolled-back plan.json this long is rewritten without its texts by the next command that writes.)
    crafted(ws, [{"op": ["write"], "path": "x.txt", "content": "x" * (70 << 10)}], [], "rolled-back")
    apply_plan(ws, plan({"op": "mkdir", "path": "made"}))
    assert (ws / "made").is_dir()
