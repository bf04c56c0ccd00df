"""``routeshell audit``, as a user runs it: the table, --json, --since, hostile text and damaged logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.events import event_problem
from engine.plans.audit import AUDIT_FILE, append_audit, audit_entry
from tests.helpers import assert_one_line_error, run_routeshell, small_disk

PLAN = {"version": 1, "goal": "tidy up", "steps": [{"op": "move", "from": "a.txt", "to": "b.txt"}]}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


def record(ws: Path, **fields: Any) -> dict[str, Any]:
    made: dict[str, Any] = {**audit_entry(action="applied", origin="cli", plan=PLAN, plan_id="00001-x"), **fields}
    assert append_audit(ws, made) is None
    return made


def audit(ws: Path, *args: str) -> Any:
    return run_routeshell("audit", "--workspace", str(ws), *args)


def test_the_table_lists_each_record_under_a_header(ws: Path) -> None:
    record(ws, time="2026-01-02T03:04:05.000Z")
    record(ws, action="rejected", result="rejected", origin="agent", thread="t9", plan_id=None, reason="too much")
    with open(ws / ".routeshell" / AUDIT_FILE, "ab") as log:
        log.write(b"not json\n")
    result = audit(ws)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["time", "action", "user", "origin", "plan", "ops", "paths", "goal"]
    assert lines[1].startswith("2026-01-02 03:04:05  applied ")  # the tests' zone is UTC
    assert "00001-x" in lines[1]
    assert lines[1].split()[-4:] == ["move", "2", "tidy", "up"]
    assert "rejected" in lines[2]
    assert "agent/t9" in lines[2]
    assert lines[2].endswith("tidy up (too much)")
    assert len(lines) == 3
    damaged = "audit.jsonl line 3: damaged (Expecting value: line 1 column 1 (char 0)), skipped"
    assert result.stderr == f"routeshell: warning: {damaged}\n"


def test_json_prints_one_event_per_record_and_warning(ws: Path) -> None:
    written = [record(ws), record(ws, action="undone", plan_id="00002-y")]
    with open(ws / ".routeshell" / AUDIT_FILE, "ab") as log:
        log.write(b"[1]\n")
    result = audit(ws, "--json")
    assert result.returncode == 0, result
    assert result.stderr == ""
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[:2] == [{"type": "audit", **item} for item in written]
    assert events[2]["type"] == "warning"
    assert events[2]["message"].startswith("audit.jsonl line 3: damaged")
    assert [event_problem(event) for event in events] == [None] * 3


def test_text_from_the_log_is_shown_not_obeyed(ws: Path) -> None:
    record(ws, goal="\x1b[31mred[red]x", reason="\x1b]0;title\x07")
    record(ws, user="\x1b[2J", plan_id="[bold]p", paths=["\x1b[1mx"])
    result = audit(ws)
    assert result.returncode == 0, result
    assert "\x1b" not in result.stdout
    assert "\x07" not in result.stdout
    assert "\\x1b[31mred[red]x (\\x1b]0;title\\x07)" in result.stdout
    assert "\\x1b[2J" in result.stdout
    assert "[bold]p" in result.stdout
    as_json = audit(ws, "--json")
    assert "\x1b" not in as_json.stdout
    assert json.loads(as_json.stdout.splitlines()[0])["goal"] == "\x1b[31mred[red]x"


def test_since_takes_a_date_a_time_or_an_age(ws: Path) -> None:
    record(ws, time="2020-01-01T00:00:00.000Z", plan_id="old")
    record(ws, plan_id="new")

    def plan_ids(*args: str) -> list[str]:
        result = audit(ws, "--json", *args)
        assert result.returncode == 0, result
        return [json.loads(line)["plan_id"] for line in result.stdout.splitlines()]

    assert plan_ids() == ["old", "new"]
    assert plan_ids("--since", "2024-01-01") == ["new"]
    assert plan_ids("--since", "2019-12-31T23:00") == ["old", "new"]
    assert plan_ids("--since", "2020-01-01T00:00:00+00:00") == ["old", "new"]
    assert plan_ids("--since", "30d") == ["new"]
    assert plan_ids("--since", "45m") == ["new"]
    assert plan_ids("--since", "2099-01-01") == []
    none = audit(ws, "--since", "2099-01-01")
    assert none.stdout == f"no audit records in {ws} since 2099-01-01 00:00:00\n"


@pytest.mark.parametrize("when", ["yesterday", "30", "3q", "2025-13-01", ""])
def test_a_bad_since_is_a_usage_error(ws: Path, when: str) -> None:
    result = audit(ws, "--since", when)
    assert_one_line_error(result, 2, "--since", "2025-01-01", "30d, 12h, 45m")


def test_a_workspace_without_a_log_has_no_records_and_gets_none(ws: Path) -> None:
    result = audit(ws)
    assert result.returncode == 0, result
    assert result.stdout == f"no audit records in {ws}\n"
    assert result.stderr == ""
    assert audit(ws, "--json").stdout == ""
    assert not (ws / ".routeshell").exists()
    missing = run_routeshell("audit", "--workspace", str(ws / "nope"))
    assert_one_line_error(missing, 2, "is not a directory")


def test_an_unreadable_log_is_one_line_and_exit_1(ws: Path) -> None:
    (ws / ".routeshell" / AUDIT_FILE).mkdir(parents=True)
    assert_one_line_error(audit(ws), 1, AUDIT_FILE, "not a regular file", "move it aside")
    (ws / ".routeshell" / AUDIT_FILE).rmdir()
    (ws / ".routeshell").rmdir()
    (ws / ".routeshell").write_text("")
    assert_one_line_error(audit(ws, "--json"), 1, ".routeshell", "not a directory")


def test_the_help_names_the_command() -> None:
    result = run_routeshell("--help")
    assert "'routeshell audit'" in result.stdout
    assert "audit" in run_routeshell("audit", "--help").stdout


def test_an_apply_whose_journal_does_not_fit_is_recorded_as_failed(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "2m") as disk:
        ws = disk / "ws"
        ws.mkdir()
        plan = tmp_path / "huge.json"
        plan.write_text(
            json.dumps({"version": 1, "steps": [{"op": "write", "path": "huge.txt", "content": "y" * 3_000_000}]})
        )
        applied = run_routeshell("--yes", "plan", "apply", "--workspace", str(ws), "--yes", str(plan))
        # The plan is what does not fit: the line says so, not that the disk is full.
        assert_one_line_error(applied, 1, "the plan takes 3,000,", "bytes are free there", "split the plan")
        assert "No space left" not in applied.stderr
        assert not (ws / "huge.txt").exists()
        result = audit(ws, "--json")
        assert result.returncode == 0, result.stderr
        [failed] = [json.loads(line) for line in result.stdout.splitlines()]
        assert (failed["action"], failed["ops"], failed["paths"]) == ("failed", ["write"], ["huge.txt"])
        assert "the plan takes" in failed["reason"]
