"""A workspace whose files have other names (``cp -al ws backup``, a hard link made by hand): a plan,
its undo and routeshell's own state change the workspace's files only, never the same files under
their other names."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from engine.plans.apply import apply_plan, undo_last
from engine.workspace.state import RESERVE_FILE, keep_reserve
from tests.helpers import tree


def plan(*steps: dict[str, object]) -> dict[str, object]:
    return {"version": 1, "goal": "edit", "steps": list(steps)}


def test_a_copy_made_with_hard_links_is_never_changed_through_them(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "notes.md").write_text("notes\n")
    (ws / "src" / "m.py").write_text("x = old\n")
    (ws / "old.txt").write_text("old\n")
    apply_plan(ws, plan({"op": "mkdir", "path": "made"}))  # the state directory, its audit log and reserve
    subprocess.run(["cp", "-al", str(ws), str(tmp_path / "backup")], check=True)
    backup = tree(tmp_path / "backup")
    audit = (tmp_path / "backup" / ".routeshell" / "audit.jsonl").read_bytes()

    events: list[dict[str, object]] = []
    apply_plan(
        ws,
        plan(
            {"op": "write", "path": "notes.md", "content": "new notes\n", "overwrite": True},
            {"op": "append", "path": "old.txt", "content": "more\n"},
            {"op": "patch", "path": "src/m.py", "find": "old", "replace": "new", "count": 0},
            {"op": "move", "from": "old.txt", "to": "made/old.txt"},
        ),
        on_event=events.append,
    )
    assert (ws / "src" / "m.py").read_text() == "x = new\n"
    assert (ws / "made" / "old.txt").read_text() == "old\nmore\n"
    undo_last(ws)
    assert (ws / "notes.md").read_text() == "notes\n"
    assert tree(tmp_path / "backup") == backup
    # The audit log, appended in place, would have grown in the copy too: it is not written, and
    # the warning says how to give the workspace a log of its own.
    assert (tmp_path / "backup" / ".routeshell" / "audit.jsonl").read_bytes() == audit
    warnings = [str(event["message"]) for event in events if event.get("type") == "warning"]
    assert any("audit.jsonl is a hard link (2 names for one file)" in warning for warning in warnings), warnings


def test_a_leftover_reserve_under_another_name_is_replaced_not_written(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / ".routeshell").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("mine\n")
    os.link(elsewhere, ws / ".routeshell" / f".{RESERVE_FILE}.tmp")
    keep_reserve(ws)
    assert elsewhere.read_text() == "mine\n"
    assert (ws / ".routeshell" / RESERVE_FILE).stat().st_nlink == 1
    assert (ws / ".routeshell" / RESERVE_FILE).stat().st_size > 0
