"""Another filesystem mounted inside the workspace: no step takes it away with a folder that holds it,
and nothing that removes a tree (emptying the trash, a rollback) ever deletes a file on it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import StepFailed, apply_plan
from engine.plans.dry_run import preview_plan
from engine.plans.files import remove_tree
from engine.plans.journal import Journal
from engine.plans.model import parse_plan
from engine.plans.trash import empty, list_trash
from engine.plans.undo import undo_journal, undo_preview
from engine.workspace.sandbox import SandboxError
from engine.workspace.state import StateError
from tests.helpers import small_disk, tree


def plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "steps": list(steps)}))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "proj" / "data").mkdir(parents=True)
    (root / "proj" / "notes.txt").write_text("notes\n")
    return root


def test_a_folder_with_a_filesystem_mounted_in_it_is_never_taken_away(ws: Path) -> None:
    with small_disk(ws / "proj" / "data", "1m") as data:
        (data / "precious.txt").write_text("only copy\n")
        before = tree(ws)
        for steps in (
            [{"op": "delete", "path": "proj"}],
            [{"op": "mkdir", "path": "elsewhere"}, {"op": "move", "from": "proj", "to": "elsewhere/proj"}],
            [{"op": "archive", "paths": ["proj"], "to": "proj.tar.gz", "remove": True}],
            [{"op": "delete", "path": "proj/data"}],
        ):
            [*_, last] = preview_plan(ws, plan(*steps))
            assert last.problem is not None, steps
            assert "'proj/data'" in last.problem
            assert "another filesystem is mounted" in last.problem
            with pytest.raises(StepFailed, match=r"'proj/data'.*another filesystem is mounted"):
                apply_plan(ws, plan(*steps))
            assert tree(ws) == before
        assert not [item for item in list_trash(ws) if item.origin in ("proj", "proj/data")]
        assert (data / "precious.txt").read_text() == "only copy\n"


def test_emptying_the_trash_never_deletes_across_a_mount(ws: Path) -> None:
    apply_plan(ws, plan({"op": "delete", "path": "proj"}))
    [item] = list_trash(ws)
    inside = ws / ".routeshell" / "trash" / item.id / "data"
    with small_disk(inside, "1m"):
        (inside / "precious.txt").write_text("only copy\n")
        where = f"{item.id} holds {inside}, where another filesystem is mounted"
        with pytest.raises(StateError, match=re.escape(where)):
            empty(ws)
        assert (inside / "precious.txt").read_text() == "only copy\n"
        assert (inside.parent / "notes.txt").exists()  # nothing of the item was deleted
    assert empty(ws) == (1, len("notes\n"))
    assert list_trash(ws) == []


def test_removing_a_tree_stops_before_a_mount_point_in_it(ws: Path) -> None:
    with small_disk(ws / "proj" / "data", "1m") as data:
        (data / "precious.txt").write_text("only copy\n")
        holder = os.open(ws, os.O_PATH | os.O_DIRECTORY)
        try:
            with pytest.raises(SandboxError, match="'proj/data'"):
                remove_tree(holder, "proj")
        finally:
            os.close(holder)
        assert (data / "precious.txt").read_text() == "only copy\n"
        assert (ws / "proj" / "notes.txt").exists()


def test_nothing_is_extracted_into_a_mount_point(ws: Path) -> None:
    apply_plan(ws, plan({"op": "archive", "paths": ["proj"], "to": "proj.tar.gz"}))
    with small_disk(ws / "mounted", "1m") as mounted:
        extract = plan({"op": "extract", "from": "proj.tar.gz", "to": "mounted"})
        [preview] = preview_plan(ws, extract)
        assert preview.problem is not None
        assert "on another filesystem mounted inside the workspace" in preview.problem
        with pytest.raises(StepFailed, match="'mounted': on another filesystem mounted inside the workspace"):
            apply_plan(ws, extract)
        assert list(mounted.iterdir()) == []


def test_undo_leaves_a_directory_it_made_where_a_filesystem_is_mounted_now(ws: Path) -> None:
    """Undo removes the directories a plan made if they are empty; one with a filesystem mounted on
    it is in use: it stays, and the rest of the undo is done (it stopped there, left 'undoing')."""
    result = apply_plan(ws, plan({"op": "mkdir", "path": "d/sub"}, {"op": "write", "path": "d/f.txt", "content": "x"}))
    with small_disk(ws / "d" / "sub", "1m"):
        assert undo_preview(ws).blocked == []
        undo_journal(ws)
        assert Journal(ws, result.journal_id).state == "undone"
        assert sorted(os.listdir(ws / "d")) == ["sub"]
        assert os.path.ismount(ws / "d" / "sub")
