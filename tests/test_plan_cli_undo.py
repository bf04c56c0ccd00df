"""``routeshell plan undo`` and ``plan history`` on a real workspace, run as a user runs them."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import assert_one_line_error, tree
from tests.test_plan_cli import PLAN_A, PLAN_B, PYTHON, json_lines, plan, plan_cmd, plans, write_plan

__all__ = ["plans"]  # the fixture, shared with the other plan command tests


def test_undo_steps_back_one_plan_at_a_time(workspace: Path, plans: Path) -> None:
    original = tree(workspace)
    assert plan_cmd("apply", workspace, str(write_plan(plans, "a", PLAN_A)), "--yes").returncode == 0
    after_a = tree(workspace)
    assert plan_cmd("apply", workspace, str(write_plan(plans, "b", PLAN_B)), "--yes").returncode == 0
    after_b = tree(workspace)
    assert after_b != after_a
    assert after_a != original
    assert (workspace / "notes.txt").read_text() == "first\nsecond\n"

    first = plan_cmd("undo", workspace)
    assert first.returncode == 0, first.stderr
    assert "undid plan 00002-" in first.stdout
    assert tree(workspace) == after_a

    second = plan_cmd("undo", workspace)
    assert second.returncode == 0, second.stderr
    assert "undid plan 00001-" in second.stdout
    assert tree(workspace) == original

    assert_one_line_error(plan_cmd("undo", workspace), 2, "nothing to undo")
    assert tree(workspace) == original


def test_undo_json_prints_an_event(workspace: Path, plans: Path) -> None:
    applied = plan_cmd("apply", workspace, str(write_plan(plans, "a", PLAN_A)), "--yes", "--json")
    journal = json_lines(applied.stdout)[-1]["journal"]
    result = plan_cmd("undo", workspace, "--json")
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout) == [{"type": "undone", "journal": journal}]


def test_undo_with_nothing_applied(workspace: Path) -> None:
    assert_one_line_error(plan_cmd("undo", workspace), 2, "nothing to undo")


def test_undo_refuses_when_a_written_file_changed(workspace: Path, plans: Path) -> None:
    assert plan_cmd("apply", workspace, str(write_plan(plans, "a", PLAN_A)), "--yes").returncode == 0
    (workspace / "notes.txt").write_text("edited by hand\n")
    before = tree(workspace)
    result = plan_cmd("undo", workspace)
    assert_one_line_error(result, 1, "cannot undo plan 00001-", "'notes.txt' changed after the plan was applied")
    assert tree(workspace) == before
    history = json_lines(plan_cmd("history", workspace, "--json").stdout)
    assert [row["state"] for row in history] == ["applied"]


def test_history_lists_every_state(workspace: Path, plans: Path) -> None:
    assert plan_cmd("apply", workspace, str(write_plan(plans, "a", PLAN_A)), "--yes").returncode == 0
    assert plan_cmd("apply", workspace, str(write_plan(plans, "b", PLAN_B)), "--yes").returncode == 0
    assert plan_cmd("undo", workspace).returncode == 0
    failing = plan(
        {"op": "write", "path": "late.txt", "content": "late\n"},
        {"op": "run", "argv": [PYTHON, "-c", "import sys; sys.exit(1)"]},
        goal="fails at the end",
    )
    assert plan_cmd("apply", workspace, str(write_plan(plans, "fail", failing)), "--yes").returncode == 1

    text = plan_cmd("history", workspace)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 3
    assert [line.split()[1] for line in lines] == ["applied", "undone", "rolled-back"]
    assert [line[:6] for line in lines] == ["00001-", "00002-", "00003-"]
    assert "plan A" in lines[0]
    assert "fails at the end" in lines[2]
    assert "3 step(s)" in lines[0]

    as_json = plan_cmd("history", workspace, "--json")
    assert as_json.returncode == 0
    rows = json_lines(as_json.stdout)
    assert [row["type"] for row in rows] == ["history"] * 3
    assert [row["state"] for row in rows] == ["applied", "undone", "rolled-back"]
    assert [row["goal"] for row in rows] == ["plan A", "plan B", "fails at the end"]
    assert [row["steps"] for row in rows] == [3, 4, 2]
    assert [row["id"] for row in rows] == [line.split()[0] for line in lines]


def test_history_of_an_untouched_workspace(workspace: Path) -> None:
    result = plan_cmd("history", workspace)
    assert result.returncode == 0
    assert result.stdout.startswith("no plans applied in ")
    as_json = plan_cmd("history", workspace, "--json")
    assert as_json.returncode == 0
    assert as_json.stdout == ""
