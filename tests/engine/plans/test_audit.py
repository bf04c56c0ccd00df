"""The audit log of plans: what a record holds, appending whole lines or none on hostile disks and
from several processes at once, and reading back past damaged lines."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
from pathlib import Path
from typing import Any

import pytest

from engine.events import event_problem
from engine.plans.apply import apply_plan
from engine.plans.audit import AUDIT_FILE, append_audit, audit_entry, read_audit
from engine.plans.model import parse_plan
from engine.workspace.state import StateError
from tests.helpers import fill_disk, read_only_view, small_disk

PLAN = {
    "version": 1,
    "goal": "tidy up",
    "steps": [
        {"op": "write", "path": "b.txt", "content": "b"},
        {"op": "move", "from": "a.txt", "to": "old/a.txt"},
        {"op": "delete", "path": "b.txt"},
        {"op": "tag", "paths": ["c.txt", "a.txt"], "tags": ["x"]},
        {"op": "delete", "match": {"glob": "**/*.log"}},
        {"op": "run", "argv": ["true"]},
    ],
}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


def log_of(root: Path) -> Path:
    return root / ".routeshell" / AUDIT_FILE


def entry(plan_id: str | None = "00001-20260101T000000", **fields: Any) -> dict[str, Any]:
    made: dict[str, Any] = {**audit_entry(action="applied", origin="cli", plan=PLAN, plan_id=plan_id), **fields}
    return made


def test_an_entry_says_who_did_what_with_which_plan() -> None:
    made = audit_entry(action="applied", origin="agent", plan=PLAN, plan_id="00003-x", thread="t1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", made["time"])
    assert made["user"]
    assert made["origin"] == "agent"
    assert made["thread"] == "t1"
    assert made["plan_id"] == "00003-x"
    assert made["goal"] == "tidy up"
    assert made["ops"] == ["delete", "move", "run", "tag", "write"]
    assert made["paths"] == ["b.txt", "a.txt", "old/a.txt", "c.txt", "match:**/*.log"]
    assert made["paths_total"] == 5
    assert made["result"] == "ok"
    assert made["reason"] is None


@pytest.mark.parametrize(
    ("action", "result"),
    [("applied", "ok"), ("undone", "ok"), ("failed", "failed"), ("refused", "refused"), ("rejected", "rejected")],
)
def test_the_result_follows_the_action(action: Any, result: str) -> None:
    assert audit_entry(action=action, origin="cli", plan=PLAN)["result"] == result


def test_an_entry_without_a_plan_or_with_a_broken_one() -> None:
    made = audit_entry(action="refused", origin="files-pane", plan=None, reason="not JSON", goal="g")
    assert (made["ops"], made["paths"], made["paths_total"], made["goal"]) == ([], [], 0, "g")
    assert made["reason"] == "not JSON"
    broken = audit_entry(action="refused", origin="cli", plan={"steps": [1, {"op": 2, "path": 3}, {"paths": "x"}]})
    assert (broken["ops"], broken["paths"], broken["goal"]) == ([], [], None)
    assert audit_entry(action="refused", origin="cli", plan=PLAN, goal="own")["goal"] == "own"


def test_the_paths_are_capped_and_counted() -> None:
    plan = {"version": 1, "steps": [{"op": "delete", "path": f"f{n}"} for n in range(10_050)]}
    made = audit_entry(action="applied", origin="cli", plan=plan)
    assert len(made["paths"]) == 10_000
    assert made["paths"][-1] == "f9999"
    assert made["paths_total"] == 10_050


def test_append_and_read_back(ws: Path) -> None:
    written = [entry("00001-a"), entry("00002-b", action="undone"), entry(None, action="rejected", reason="no")]
    for item in written:
        assert append_audit(ws, item) is None
    assert os.stat(log_of(ws)).st_mode & 0o777 == 0o600
    records, warnings = read_audit(ws)
    assert warnings == []
    assert [record.fields() for record in records] == written
    event = records[0].as_event()
    assert event == {"type": "audit", **written[0]}
    assert event_problem(event) is None
    assert "00001-a" in records[0].line()


def test_a_name_that_is_not_utf8_survives(ws: Path) -> None:
    name = os.fsdecode(b"caf\xe9 \x1b.txt")
    plan = {"version": 1, "goal": "g", "steps": [{"op": "delete", "path": name}]}
    assert append_audit(ws, audit_entry(action="applied", origin="cli", plan=plan)) is None
    raw = log_of(ws).read_bytes()
    raw.decode("ascii")
    assert b"\\udce9" in raw
    records, warnings = read_audit(ws)
    assert warnings == []
    assert records[0].paths == (name,)
    assert os.fsencode(records[0].paths[0]) == b"caf\xe9 \x1b.txt"


def test_damaged_lines_are_skipped_with_a_warning_each(ws: Path) -> None:
    def good(plan_id: str) -> bytes:
        return (json.dumps(entry(plan_id)) + "\n").encode()

    log_of(ws).parent.mkdir()
    log_of(ws).write_bytes(
        good("1")
        + b"garbage\n"
        + b"[1, 2]\n"
        + b'{"time": "2026-01-01T00:00:00Z", "goal": "caf\xe9"}\n'
        + (json.dumps(entry("x", paths_total="3")) + "\n").encode()
        + (json.dumps(entry("x", ops="write")) + "\n").encode()
        + (json.dumps({k: v for k, v in entry("x").items() if k != "user"}) + "\n").encode()
        + (json.dumps(entry("x", time="yesterday")) + "\n").encode()
        + good("2")
        + good("3")[:40]
    )
    records, warnings = read_audit(ws)
    assert [record.plan_id for record in records] == ["1", "2"]
    numbers = [re.findall(r"^audit.jsonl line (\d+): damaged \(", warning) for warning in warnings]
    assert numbers == [["2"], ["3"], ["4"], ["5"], ["6"], ["7"], ["8"], ["10"]]
    assert all(w.endswith(", skipped") and "\n" not in w for w in warnings)
    assert "not an object" in warnings[1]
    assert "utf-8" in warnings[2]
    assert "paths_total" in warnings[3]
    assert "no user" in warnings[5]
    assert "cut short" in warnings[7]


def test_a_line_torn_by_a_crash_does_not_swallow_the_next(ws: Path) -> None:
    assert append_audit(ws, entry("1")) is None
    with open(log_of(ws), "ab") as log:
        log.write(b'{"time": "20')
    assert append_audit(ws, entry("2")) is None
    records, warnings = read_audit(ws)
    assert [record.plan_id for record in records] == ["1", "2"]
    assert len(warnings) == 1
    assert warnings[0].startswith("audit.jsonl line 2: damaged")


def test_since_keeps_the_later_records(ws: Path) -> None:
    for when in ("2020-01-01T00:00:00.000Z", "2025-06-01T12:00:00.000Z", "2026-01-01T00:00:00.000Z"):
        assert append_audit(ws, entry(when, time=when)) is None
    cut = 1748779200.0  # 2025-06-01T12:00:00Z
    assert [r.plan_id for r in read_audit(ws, since=cut)[0]] == ["2025-06-01T12:00:00.000Z", "2026-01-01T00:00:00.000Z"]
    assert [r.time for r in read_audit(ws)[0]][1] == cut
    assert read_audit(ws, since=4e9) == ([], [])


def test_reading_creates_nothing(ws: Path) -> None:
    assert read_audit(ws) == ([], [])
    assert not (ws / ".routeshell").exists()
    (ws / ".routeshell").mkdir()
    assert read_audit(ws) == ([], [])
    assert list((ws / ".routeshell").iterdir()) == []


def test_a_state_directory_that_is_not_ours(ws: Path) -> None:
    (ws / ".routeshell").write_text("mine")
    warning = append_audit(ws, entry())
    assert warning is not None
    assert warning.startswith("audit log not written: ")
    assert "not a directory" in warning
    assert "\n" not in warning
    with pytest.raises(StateError, match="not a directory"):
        read_audit(ws)
    assert (ws / ".routeshell").read_text() == "mine"


def test_a_log_that_is_a_symlink_or_a_fifo_is_refused(ws: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    (ws / ".routeshell").mkdir()
    log_of(ws).symlink_to(target)
    warning = append_audit(ws, entry())
    assert warning is not None
    assert warning.startswith("audit log not written: ")
    assert "move it aside" in warning
    assert target.read_text() == ""
    with pytest.raises(StateError, match="audit log"):
        read_audit(ws)
    log_of(ws).unlink()
    os.mkfifo(log_of(ws))
    warning = append_audit(ws, entry())
    assert warning is not None
    assert warning.startswith("audit log not written: ")
    with pytest.raises(StateError, match="not a regular file"):
        read_audit(ws)
    # The same file under another name, outside the workspace perhaps, is not appended to.
    log_of(ws).unlink()
    os.link(target, log_of(ws))
    warning = append_audit(ws, entry())
    assert warning is not None
    assert "is a hard link (2 names for one file)" in warning
    assert target.read_text() == ""


def test_a_full_disk_leaves_no_partial_line(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        ws = disk / "ws"
        ws.mkdir()
        assert append_audit(ws, entry("1")) is None
        before = log_of(ws).read_bytes()
        fill_disk(disk)
        # Far more than the page the log may have left, so that part of it could be written.
        plan = {"version": 1, "steps": [{"op": "delete", "path": f"dir/{n:04d}-" + "x" * 90} for n in range(3000)]}
        warning = append_audit(ws, audit_entry(action="applied", origin="cli", plan=plan))
        assert warning is not None
        assert warning.startswith("audit log not written: ")
        assert "free some space" in warning
        assert log_of(ws).read_bytes() == before
        records, warnings = read_audit(ws)
        assert ([r.plan_id for r in records], warnings) == (["1"], [])


def test_a_read_only_workspace_is_a_warning(ws: Path, tmp_path: Path) -> None:
    assert append_audit(ws, entry("1")) is None
    before = log_of(ws).read_bytes()
    with read_only_view(ws, tmp_path / "view") as view:
        warning = append_audit(view, entry("2"))
        assert warning is not None
        assert warning.startswith("audit log not written: ")
        assert "not writable" in warning
        records, warnings = read_audit(view)
        assert ([r.plan_id for r in records], warnings) == (["1"], [])
    assert log_of(ws).read_bytes() == before


def _append_many(root: str, writer: int) -> None:
    for n in range(200):
        problem = append_audit(Path(root), entry(f"{writer}-{n}", goal="x" * (n * 37 % 5000)))
        if problem is not None:
            raise SystemExit(problem)


def test_concurrent_appends_are_whole_lines(ws: Path) -> None:
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(str(ws), writer)) for writer in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
    assert [process.exitcode for process in writers] == [0, 0, 0, 0]
    records, warnings = read_audit(ws)
    assert warnings == []
    assert len(records) == 800
    assert {record.plan_id for record in records} == {f"{w}-{n}" for w in range(4) for n in range(200)}
    assert log_of(ws).read_bytes().count(b"\n") == 800


def test_an_apply_that_cannot_start_its_journal_is_recorded_as_failed(ws: Path) -> None:
    (ws / ".routeshell").mkdir()
    (ws / ".routeshell" / "journal").write_text("not a directory\n")
    plan = parse_plan(
        json.dumps({"version": 1, "goal": "make b", "steps": [{"op": "write", "path": "b.txt", "content": "b"}]})
    )
    with pytest.raises(StateError, match="journal"):
        apply_plan(ws, plan)
    records, warnings = read_audit(ws)
    assert warnings == []
    assert [(r.action, r.goal, r.paths) for r in records] == [("failed", "make b", ("b.txt",))]
    assert "journal" in (records[0].reason or "")
