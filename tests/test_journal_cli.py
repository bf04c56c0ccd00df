"""Journals that cannot be trusted, as a user meets them on the real command line: a crafted one
plants nothing and a cut-short one undoes nothing, each said in one line; and an undo that would
meet a read-only directory is refused before it starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, read_only_view, run_routeshell, tree

JOURNAL_ID = "00001-20260101T000000"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.txt").write_text("a\n")
    return root


def craft_hook_journal(ws: Path) -> Path:
    """The journal of an apply 'interrupted' while writing README, whose record names a git hook."""
    (ws / ".git" / "hooks").mkdir(parents=True)
    journal = ws / ".routeshell" / "journal" / JOURNAL_ID
    (journal / "backup").mkdir(parents=True)
    meta = {"id": JOURNAL_ID, "started": 1767225600.0, "origin": None, "via": "cli",
            "plan": {"version": 1, "goal": "fix typo",
                     "steps": [{"op": "write", "path": "README", "content": "x", "overwrite": True}]}}  # fmt: skip
    (journal / "plan.json").write_text(json.dumps(meta))
    record = {"i": 0, "op": "write", "path": ".git/hooks/post-checkout", "existed": True, "mode": 493, "sha": "00"}
    (journal / "log.jsonl").write_text(json.dumps(record) + "\n")
    (journal / "state").write_text("applying")
    (journal / "backup" / "0").write_text("#!/bin/sh\necho PWNED\n")
    return journal


def test_a_crafted_journal_plants_no_git_hook(ws: Path, tmp_path: Path) -> None:
    journal = craft_hook_journal(ws)
    before = tree(ws)
    history = run_routeshell("plan", "history", "--workspace", str(ws))
    assert history.returncode == 0, history
    [warning] = history.stderr.splitlines()
    assert f"journal {JOURNAL_ID} is damaged: record 1 (write)" in warning
    assert f"mv '{journal}' '{journal}.broken'" in warning
    assert f"{JOURNAL_ID}  damaged" in history.stdout
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "steps": [{"op": "write", "path": "b.txt", "content": "b"}]}))
    applied = run_routeshell("plan", "apply", str(plan), "--yes", "--workspace", str(ws))
    assert_one_line_error(applied, 1, f"journal {JOURNAL_ID} is damaged", f"mv '{journal}'")
    assert_one_line_error(run_routeshell("plan", "undo", "--workspace", str(ws)), 1, f"journal {JOURNAL_ID} is damaged")
    assert tree(ws) == before
    assert (journal / "state").read_text() == "applying"
    os.rename(journal, f"{journal}.broken")  # as the line says
    assert run_routeshell("plan", "apply", str(plan), "--yes", "--workspace", str(ws)).returncode == 0
    assert not (ws / ".git" / "hooks" / "post-checkout").exists()


def test_undo_of_a_journal_cut_short_is_refused(ws: Path) -> None:
    plan = json.dumps({"version": 1, "steps": [{"op": "write", "path": "made.txt", "content": "m"}]})
    assert run_routeshell("plan", "apply", "-", "--yes", "--workspace", str(ws), stdin_text=plan).returncode == 0
    [log] = (ws / ".routeshell" / "journal").glob("*/log.jsonl")
    log.write_bytes(log.read_bytes()[:15])
    history = run_routeshell("plan", "history", "--workspace", str(ws))
    assert " damaged " in history.stdout, history
    assert "is not a whole step record" in history.stdout
    undo = run_routeshell("plan", "undo", "--workspace", str(ws))
    assert_one_line_error(undo, 1, "the newest applied plan", "cannot be undone", "is damaged", "mv '")
    assert (ws / "made.txt").read_text() == "m"


def test_undo_dry_run_names_a_read_only_directory(ws: Path) -> None:
    (ws / "sub").mkdir()
    (ws / "sub" / "b.txt").write_text("b\n")
    plan = json.dumps({"version": 1, "steps": [{"op": "delete", "path": "sub/b.txt"}]})
    assert run_routeshell("plan", "apply", "-", "--yes", "--workspace", str(ws), stdin_text=plan).returncode == 0
    with read_only_view(ws / "sub", ws / "sub"):
        dry = run_routeshell("plan", "undo", "--dry-run", "--workspace", str(ws))
        assert "! blocked: the directory 'sub' is read-only" in dry.stdout, dry
        assert_one_line_error(dry, 1, "cannot be undone now: make those directories writable")
        undo = run_routeshell("plan", "undo", "--workspace", str(ws))
        assert_one_line_error(undo, 1, "the directory 'sub' is read-only", "make it writable, then undo")
        assert "applied" in run_routeshell("plan", "history", "--workspace", str(ws)).stdout
    assert run_routeshell("plan", "undo", "--workspace", str(ws)).returncode == 0
    assert (ws / "sub" / "b.txt").read_text() == "b\n"


def apply_one(ws: Path, path: str) -> None:
    plan = json.dumps({"version": 1, "steps": [{"op": "write", "path": path, "content": "m"}]})
    applied = run_routeshell("plan", "apply", "-", "--yes", "--workspace", str(ws), stdin_text=plan)
    assert applied.returncode == 0, applied


def test_a_journal_killed_before_its_plan_was_written_is_recovered_once(ws: Path) -> None:
    apply_one(ws, "made.txt")
    [applied] = (ws / ".routeshell" / "journal").iterdir()
    # What a kill inside the start of a journal leaves: its folder, the backup folder, half of the
    # temporary file plan.json is written through, and its trash folder; no plan.json, no state.
    cut = ws / ".routeshell" / "journal" / "00002-20260101T000000"
    (cut / "backup").mkdir(parents=True)
    (cut / ".plan.json.tmp-0a1b2c3d").write_text('{"id": "00002-20260101T000000", "pla')
    (ws / ".routeshell" / "trash" / cut.name).mkdir()
    first = run_routeshell("plan", "history", "--workspace", str(ws))
    assert first.returncode == 0, first
    assert first.stdout.splitlines()[0] == f"recovered plan {cut.name} interrupted while applying"
    assert [line.split()[:2] for line in first.stdout.splitlines()[1:]] == [[applied.name, "applied"]]
    assert not cut.exists()
    assert not (ws / ".routeshell" / "trash" / cut.name).exists()
    again = run_routeshell("plan", "history", "--workspace", str(ws))
    assert again.returncode == 0, again
    assert again.stdout == "\n".join(first.stdout.splitlines()[1:]) + "\n"
    assert again.stderr == ""
    apply_one(ws, "next.txt")
    assert (ws / "next.txt").read_text() == "m"


def test_a_folder_that_is_no_journal_is_listed_as_damaged_and_left_as_it_is(ws: Path) -> None:
    apply_one(ws, "made.txt")
    junk = ws / ".routeshell" / "journal" / "00002-notes"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine\n")
    damaged = (
        f"00002-notes  damaged      ?                        ? step(s)  journal 00002-notes has no plan.json, but "
        f"holds other files; move it aside (mv '{junk}' '{junk}.broken') and try again"
    )
    for _ in range(2):
        history = run_routeshell("plan", "history", "--workspace", str(ws))
        assert history.returncode == 0, history
        assert "recovered" not in history.stdout + history.stderr
        assert history.stdout.splitlines()[-1] == damaged
        assert sorted(path.name for path in junk.iterdir()) == ["notes.txt"]
    apply_one(ws, "next.txt")
    assert (ws / "next.txt").read_text() == "m"
    assert (junk / "notes.txt").read_text() == "mine\n"
    assert sorted(path.name for path in junk.iterdir()) == ["notes.txt"]
