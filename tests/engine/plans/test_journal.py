"""The journal on hostile disks: short writes, full and read-only workspaces, damaged and stray entries."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.errors import RouteshellError, UsageError
from engine.plans.apply import StepFailed, apply_plan, recover, undo_last
from engine.plans.journal import Journal, history, journals
from engine.plans.model import parse_plan
from engine.plans.undo import undo_journal, undo_preview
from engine.workspace.state import StateError
from tests.helpers import fill_disk, read_only_view, small_disk, tree

PAGE = 4096


def plan(*steps: dict[str, Any], goal: str = "") -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "goal": goal, "steps": list(steps)}))


def state_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / ".routeshell").rglob("*"))


def test_a_record_cut_short_by_a_full_disk_stops_the_apply_before_its_step(tmp_path: Path) -> None:
    # The first record nearly fills one page of log.jsonl; the run step then fills the disk, so
    # the next record fits only in part: a short write. The delete must not run.
    with small_disk(tmp_path / "disk", "1m") as disk:
        ws = disk / "ws"
        ws.mkdir()
        victim = "v" * 240 + ".txt"
        (ws / victim).write_text("keep me\n")
        code = (
            "import os\nfd = os.open('filler', os.O_WRONLY | os.O_CREAT)\n"
            "try:\n    while True: os.write(fd, bytes(4096))\nexcept OSError: pass\n"
        )
        argv = [sys.executable, "-c", code, ""]
        bare = len(json.dumps({"i": 0, "op": "run", "argv": argv}, ensure_ascii=False)) + 1
        argv[-1] = "x" * (PAGE - 100 - bare)
        document = plan({"op": "run", "argv": argv, "timeout_s": 60}, {"op": "delete", "path": victim})
        with pytest.raises(StepFailed, match=r"step 2 \(delete 'v+\.txt'\) failed: its journal record could not"):
            apply_plan(ws, document)
        assert (ws / victim).read_text() == "keep me\n"
        [journal] = journals(ws)
        assert journal.state == "rolled-back"
        assert [record["op"] for record in journal.records()] == ["run"]
        assert not [name for name in state_files(ws) if ".tmp-" in name]


def test_a_delete_only_plan_works_on_a_full_disk(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "512k") as disk:
        ws = disk / "ws"
        ws.mkdir()
        (ws / "big.bin").write_bytes(bytes(100_000))
        apply_plan(ws, plan({"op": "mkdir", "path": "logs"}))  # the workspace has state already
        fill_disk(ws / "logs")
        with pytest.raises(OSError, match="No space left"):
            (ws / "more.txt").write_bytes(bytes(PAGE))
        result = apply_plan(ws, plan({"op": "delete", "path": "big.bin"}, {"op": "delete", "path": "logs"}))
        assert not (ws / "big.bin").exists()
        assert [j.state for j in journals(ws)] == ["applied", "applied"]
        undo_journal(ws, result.journal_id)
        assert (ws / "big.bin").stat().st_size == 100_000


def test_a_full_disk_fails_in_one_line_and_leaves_no_temp_files(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "256k") as disk:
        ws = disk / "ws"
        ws.mkdir()
        fill_disk(ws)
        with pytest.raises(StateError, match="No space left on device; free some space") as raised:
            apply_plan(ws, plan({"op": "write", "path": "a.txt", "content": "x" * 10_000}))
        assert "\n" not in str(raised.value)
        assert not (ws / "a.txt").exists()
        assert not [name for name in state_files(ws) if ".tmp-" in name or name.startswith(".routeshell/journal/")]


def test_a_read_only_workspace_refuses_in_one_line_and_still_lists_its_history(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("a\n")
    apply_plan(ws, plan({"op": "write", "path": "b.txt", "content": "b\n"}, goal="before"))
    with read_only_view(ws, tmp_path / "ro") as ro:
        with pytest.raises(StateError, match="Read-only file system; the workspace is not writable"):
            apply_plan(ro, plan({"op": "delete", "path": "a.txt"}))
        with pytest.raises(StateError, match="Read-only file system"):
            undo_last(ro)
        assert [(row.state, row.goal) for row in history(ro)] == [("applied", "before")]
        # The dry run says so too: the undo would have to take b.txt out of the root.
        assert undo_preview(ro).blocked == [
            "the workspace root is read-only, and undoing the plan changes what is in it; make it writable, then undo"
        ]
        assert recover(ro) == []


def test_read_only_commands_create_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    assert history(ws) == []
    assert recover(ws) == []
    with pytest.raises(RouteshellError, match="nothing to undo"):
        undo_preview(ws)
    assert list(ws.iterdir()) == []


def test_damaged_and_stray_journal_entries_are_listed_or_ignored(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    first = apply_plan(ws, plan({"op": "write", "path": "a.txt", "content": "a\n"}, goal="first"))
    directory = ws / ".routeshell" / "journal"
    (directory / ".DS_Store").write_bytes(b"\0\1junk")
    (directory / "junk").mkdir()
    (directory / "notes-1").write_text("not a journal")
    # A kill inside Journal.create: the directory exists, nothing in it.
    (directory / "00007-20260101T000000").mkdir()
    truncated = directory / "00008-20260101T000001"
    truncated.mkdir()
    (truncated / "plan.json").write_text('{"id": "00008-20260101T000001", "plan": {"ste')
    (truncated / "state").write_text("applied")
    garbled = directory / "00009-20260101T000002"
    garbled.mkdir()
    (garbled / "plan.json").write_text(json.dumps({"id": garbled.name, "started": 0, "plan": {"steps": []}}))
    (garbled / "state").write_bytes(b"\xffappl")

    rows = history(ws)
    assert [(row.id, row.state) for row in rows] == [
        (first.journal_id, "applied"),
        ("00007-20260101T000000", "damaged"),
        ("00008-20260101T000001", "damaged"),
        ("00009-20260101T000002", "damaged"),
    ]
    assert "has no plan.json (cut short while it was being created)" in (rows[1].problem or "")
    assert "plan.json is damaged" in (rows[2].problem or "")
    assert "its state file is damaged" in (rows[3].problem or "")
    assert all(f"mv '{directory / row.id}' '{directory / row.id}.broken'" in (row.problem or "") for row in rows[1:])

    second = apply_plan(ws, plan({"op": "write", "path": "b.txt", "content": "b\n"}, goal="second"))
    assert second.journal_id.startswith("00010-")
    assert undo_last(ws).id == second.journal_id
    assert undo_journal(ws, first.journal_id).id == first.journal_id
    assert tree(ws) == {}


def test_recovery_removes_a_journal_cut_short_in_create(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    apply_plan(ws, plan({"op": "write", "path": "a.txt", "content": "a\n"}))
    (ws / ".routeshell" / "journal" / "00002-20260101T000000").mkdir()
    assert recover(ws) == ["00002-20260101T000000"]
    assert [row.state for row in history(ws)] == ["applied"]
    assert not (ws / ".routeshell" / "journal" / "00002-20260101T000000").exists()
    assert recover(ws) == []


def test_recovery_that_cannot_put_a_deleted_file_back_says_where_it_is(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("precious\n")
    result = apply_plan(ws, plan({"op": "delete", "path": "a.txt"}))
    # What a kill just before the state write leaves: the step done, the state still "applying".
    Journal(ws, result.journal_id).set_state("applying")
    (ws / "a.txt").write_text("a new one\n")
    trash = ws / ".routeshell" / "trash" / result.journal_id
    with pytest.raises(StateError, match=f"what it deleted is kept in {trash}"):
        recover(ws)
    assert (trash / "0").read_text() == "precious\n"


def test_undo_by_id_leaves_a_later_plan_alone(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "mine.txt").write_text("mine\n")
    first = apply_plan(ws, plan({"op": "write", "path": "refactor.py", "content": "x = 1\n"}, goal="refactor"))
    later = apply_plan(ws, plan({"op": "delete", "path": "mine.txt"}, {"op": "write", "path": "other.txt",
                                                                        "content": "o\n"}))  # fmt: skip
    undone = undo_journal(ws, first.journal_id)
    assert undone.id == first.journal_id
    assert not (ws / "refactor.py").exists()
    assert (ws / "other.txt").read_text() == "o\n"
    assert [j.state for j in journals(ws)] == ["undone", "applied"]
    assert later.journal_id == journals(ws)[1].id
    with pytest.raises(RouteshellError, match="is undone, not applied"):
        undo_journal(ws, first.journal_id)
    with pytest.raises(UsageError, match="no plan 'nope'"):
        undo_journal(ws, "nope")


def test_undo_preview_says_what_and_what_blocks(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("a\n")
    apply_plan(ws, plan({"op": "append", "path": "a.txt", "content": "more\n"}, {"op": "delete", "path": "a.txt"}))
    before = state_files(ws)
    preview = undo_preview(ws)
    assert preview.actions == ["put 'a.txt' back from the trash", "restore the previous content of 'a.txt'"]
    assert preview.blocked == []
    (ws / "a.txt").write_text("new\n")
    assert undo_preview(ws).blocked == ["'a.txt' exists again, so the deleted one cannot be restored"]
    assert state_files(ws) == before
    with pytest.raises(StepFailed, match=r"cannot undo plan .*exists again.*; put those paths back"):
        undo_last(ws)


def test_a_record_is_written_whole(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    big = {"i": 0, "op": "run", "argv": ["x" * 4000] * 75}
    journal = Journal.create(ws, plan({"op": "run", "argv": big["argv"]}))
    journal.record(big)
    assert journal.records()[-1] == big
    assert os.path.getsize(journal.dir / "log.jsonl") > 300_000


def test_journals_written_before_via_was_kept_still_read(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    apply_plan(ws, plan({"op": "mkdir", "path": "d"}, goal="old"), origin="t1/p1")
    apply_plan(ws, plan({"op": "mkdir", "path": "e"}, goal="older"))
    for journal in journals(ws):
        meta = json.loads((journal.dir / "plan.json").read_text())
        del meta["via"]
        (journal.dir / "plan.json").write_text(json.dumps(meta))
    assert [(row.goal, row.via) for row in history(ws)] == [("old", "agent"), ("older", "unknown")]
    assert history(ws)[0].as_event()["via"] == "agent"


def test_an_unreadable_log_stops_recovery_with_what_to_move_aside(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("a\n")
    result = apply_plan(ws, plan({"op": "delete", "path": "a.txt"}))
    journal = Journal(ws, result.journal_id)
    journal.set_state("applying")
    os.unlink(journal.dir / "log.jsonl")
    (journal.dir / "log.jsonl").mkdir()  # a directory in its place: never read as "no steps ran"
    with pytest.raises(StateError, match=rf"log\.jsonl cannot be read .*mv '{journal.dir}' '{journal.dir}\.broken'"):
        recover(ws)
    assert journal.state == "applying"
    assert (journal.trash_dir / "0").read_text() == "a\n"
    os.rename(journal.dir, f"{journal.dir}.broken")  # as the message says
    assert recover(ws) == []
    assert [row.id for row in history(ws)] == []
    second = apply_plan(ws, plan({"op": "mkdir", "path": "d"}))
    assert second.journal_id.startswith("00002-")


def test_emptying_the_trash_first_puts_back_what_a_crashed_apply_deleted(tmp_path: Path) -> None:
    from engine.plans import trash

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("a\n")
    (ws / "b.txt").write_text("b\n")
    apply_plan(ws, plan({"op": "delete", "path": "b.txt"}))
    crashed = apply_plan(ws, plan({"op": "delete", "path": "a.txt"}))
    Journal(ws, crashed.journal_id).set_state("applying")  # killed before its state was written
    assert trash.empty(ws) == (1, 2)
    assert (ws / "a.txt").read_text() == "a\n"
    assert not (ws / "b.txt").exists()
    assert [j.state for j in journals(ws)] == ["applied", "rolled-back"]
