"""A plan that never took effect leaves nothing behind: what it made is removed, not trashed, and
its journal keeps its steps but not the text they would have written.

Rolling back a failed apply (and recovering an interrupted one) removes outright what the plan
created while it still holds what the plan put there; what someone changed since goes to the
trash, and nothing that existed before the plan is ever removed. An undo of an applied plan
still keeps what it takes away in the trash.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import StepFailed, apply_plan, recover, undo_last
from engine.plans.journal import Journal, journals
from engine.plans.model import parse_plan
from engine.plans.trash import list_trash
from tests.helpers import small_disk, tree


def plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "steps": list(steps)}))


def free_bytes(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "big").write_bytes(os.urandom(300_000))
    (root / "src" / "m.py").write_text("x = 1\n")
    return root


def test_a_failed_apply_removes_what_it_made_outright(ws: Path) -> None:
    before = tree(ws)
    failing = plan(
        {"op": "copy", "from": "big", "to": "big.copy"},
        {"op": "copy", "from": "src", "to": "src2"},
        {"op": "write", "path": "new.txt", "content": "fresh"},
        {"op": "run", "argv": ["false"]},
    )
    with pytest.raises(StepFailed, match="rolled back"):
        apply_plan(ws, failing)
    assert tree(ws) == before
    assert list_trash(ws) == []


def test_what_changed_before_the_rollback_goes_to_the_trash(ws: Path) -> None:
    original = (ws / "big").read_bytes()
    failing = plan(
        {"op": "copy", "from": "big", "to": "big.copy"},
        {"op": "write", "path": "new.txt", "content": "fresh"},
        # The command changes the new file, and the copy's source: the copy is then the only
        # place left that holds what 'big' held before the plan.
        {"op": "run", "argv": ["sh", "-c", "echo changed > new.txt; echo more >> big; exit 1"]},
    )
    with pytest.raises(StepFailed, match="rolled back"):
        apply_plan(ws, failing)
    assert not (ws / "big.copy").exists()
    assert not (ws / "new.txt").exists()
    kept = {item.origin: ws / ".routeshell" / "trash" / item.journal_id / item.name for item in list_trash(ws)}
    assert set(kept) == {"big.copy", "new.txt"}
    assert kept["big.copy"].read_bytes() == original
    assert kept["new.txt"].read_text() == "changed\n"


def test_a_copy_replaced_by_something_else_goes_to_the_trash(ws: Path) -> None:
    failing = plan(
        {"op": "copy", "from": "src", "to": "src2"},
        {"op": "run", "argv": ["sh", "-c", "echo mine > src2/added.txt; exit 1"]},
    )
    with pytest.raises(StepFailed):
        apply_plan(ws, failing)
    assert not (ws / "src2").exists()
    [item] = list_trash(ws)
    assert (ws / ".routeshell" / "trash" / item.journal_id / item.name / "added.txt").read_text() == "mine\n"


def test_an_undo_of_an_applied_plan_still_keeps_what_it_made_in_the_trash(ws: Path) -> None:
    apply_plan(ws, plan({"op": "write", "path": "new.txt", "content": "fresh"}))
    undo_last(ws)
    assert not (ws / "new.txt").exists()
    assert [item.origin for item in list_trash(ws)] == ["new.txt"]


def test_a_plan_that_fills_the_disk_gives_all_its_space_back(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "2m") as root:
        (root / "big").write_bytes(os.urandom(300_000))
        apply_plan(root, plan({"op": "mkdir", "path": "keep"}))  # the state directory, made beforehand
        before, free = tree(root), free_bytes(root)
        copies = [{"op": "copy", "from": "big", "to": f"c{n}"} for n in range(1, 8)]
        with pytest.raises(StepFailed, match=r"step 6 \(copy 'big' to 'c6'\) failed: No space left on device"):
            apply_plan(root, plan(*copies))
        assert tree(root) == before
        assert list_trash(root) == []
        assert free_bytes(root) >= free - 64 * 1024  # only the journal's few records stay


def test_what_archive_and_extract_made_is_removed_when_a_full_disk_stops_the_plan(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "2m") as root:
        (root / "big").write_bytes(os.urandom(300_000))
        (root / "src").mkdir()
        (root / "src" / "m.py").write_text("x = 1\n")
        with zipfile.ZipFile(root / "a.zip", "w") as archive:
            archive.writestr("a/readme.txt", "from the zip\n")
        apply_plan(root, plan({"op": "mkdir", "path": "keep"}))  # the state directory, made beforehand
        before = tree(root)
        copies = [{"op": "copy", "from": "big", "to": f"c{n}"} for n in range(1, 8)]
        made = [{"op": "archive", "paths": ["src"], "to": "src.tar.gz"},
                {"op": "extract", "from": "a.zip", "to": "out"},  # a folder it makes
                {"op": "extract", "from": "a.zip", "to": "keep"}]  # fmt: skip
        with pytest.raises(StepFailed, match="No space left on device"):
            apply_plan(root, plan(*made, *copies))
        assert tree(root) == before
        assert list_trash(root) == []


def test_an_extracted_file_changed_before_the_rollback_goes_to_the_trash(ws: Path) -> None:
    with zipfile.ZipFile(ws / "a.zip", "w") as archive:
        archive.writestr("a/readme.txt", "from the zip\n")
    failing = plan(
        {"op": "extract", "from": "a.zip", "to": "src"},
        {"op": "run", "argv": ["sh", "-c", "echo mine >> src/a/readme.txt; exit 1"]},
    )
    with pytest.raises(StepFailed):
        apply_plan(ws, failing)
    assert sorted(os.listdir(ws / "src")) == ["m.py"]
    [item] = list_trash(ws)
    kept = ws / ".routeshell" / "trash" / item.journal_id / item.name / "a" / "readme.txt"
    assert kept.read_text() == "from the zip\nmine\n"


def test_a_plan_rolled_back_on_a_nearly_full_disk_gives_back_the_room_its_journal_took(tmp_path: Path) -> None:
    big = plan({"op": "write", "path": "big", "content": "x" * 600_000})
    mid = plan({"op": "write", "path": "mid", "content": "y" * 300_000})
    with small_disk(tmp_path / "disk", "1m") as root:
        warnings: list[dict[str, Any]] = []
        with pytest.raises(StepFailed, match="No space left on device; nothing was changed"):
            apply_plan(root, big, on_event=lambda event: warnings.append(event) if event["type"] == "warning" else None)
        assert warnings == []  # the failure is logged once the rollback has freed the room for it
        [journal] = journals(root)
        assert journal.state == "rolled-back"
        # What history and show read stays; the text the step would have written goes.
        assert journal.meta["plan"]["steps"] == [{"op": "write", "path": "big", "overwrite": False}]
        assert (journal.dir / "plan.json").stat().st_size < 1024
        # A journal rolled back with its text still in it (cut short before it was dropped) is
        # dropped by the next command, before that command's own journal needs the room.
        (journal.dir / "plan.json").write_text(json.dumps({**journal.meta, "plan": big}))
        apply_plan(root, mid)
        assert (root / "mid").stat().st_size == 300_000
        assert [j.state for j in journals(root)] == ["rolled-back", "applied"]
        assert "content" not in journals(root)[0].meta["plan"]["steps"][0]


def test_an_interrupted_apply_keeps_its_whole_plan_until_it_is_rolled_back(ws: Path) -> None:
    result = apply_plan(ws, plan({"op": "write", "path": "new.txt", "content": "made"}))
    journal = Journal(ws, result.journal_id)
    journal.set_state("applying")  # killed before it was marked applied
    assert journal.meta["plan"]["steps"][0]["content"] == "made"
    assert recover(ws) == [journal.id]
    assert not (ws / "new.txt").exists()
    assert journal.state == "rolled-back"
    assert journal.meta["plan"]["steps"] == [{"op": "write", "path": "new.txt", "overwrite": False}]
