"""``routeshell run`` on a workspace whose session database cannot be written: read-only or full.

A database that is fine but cannot be written is one line that says why, exit 1; it is never
called damaged, nor is moving it aside suggested.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, fill_disk, read_only_view, run_routeshell, small_disk
from tests.run_cli.support import BUILD, closed_port_url, events, plan, run
from tests.scripted_llm import Reply, ScriptedLLM

TASK = "move the notes into old"


def run_once(ws: Path) -> Path:
    """Run a task on ``ws`` once (its endpoint is down), which leaves a session database; return it."""
    result = run(closed_port_url(), ws, "--topology", "single", TASK)
    assert result.returncode == 3, result
    database = ws / ".routeshell" / "sessions.sqlite"
    assert database.is_file()
    return database


def assert_disk_error(ws: Path, *needles: str) -> None:
    """A run on ``ws``, plain and with --json, ends in one line holding ``needles``, and exit 1."""
    plain = run(closed_port_url(), ws, "--yes", "--approve", "never", TASK)
    assert_one_line_error(plain, 1, *needles)
    assert ".broken" not in plain.stderr
    assert "not a routeshell session database" not in plain.stderr
    json = run(closed_port_url(), ws, "--json", "--yes", "--approve", "never", TASK)
    assert_one_line_error(json, 1, *needles)
    final = events(json.stdout)[-1]
    assert (final["type"], final["ok"], final["exit_code"]) == ("final", False, 1)
    assert needles[0] in final["summary"]


@pytest.mark.parametrize("open_elsewhere", [False, True], ids=["closed", "copied-while-open"])
def test_a_read_only_workspace_run_before_is_one_line_and_exit_1(
    ws: Path, tmp_path: Path, open_elsewhere: bool
) -> None:
    database = run_once(ws)
    source = tmp_path / "copy"
    # A copy made while another routeshell had the database open holds its shared-memory file:
    # SQLite then opens the database on a read-only disk, and only a write fails.
    with closing(sqlite3.connect(database)) as conn:
        conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        if open_elsewhere:
            shutil.copytree(ws, source)
    if not open_elsewhere:
        shutil.copytree(ws, source)
    with read_only_view(source, tmp_path / "view") as view:
        assert_disk_error(view, "Read-only file system", str(view / ".routeshell"), "sessions.sqlite")


def test_a_full_disk_is_not_called_a_damaged_database(ws: Path, tmp_path: Path) -> None:
    run_once(ws)
    with small_disk(tmp_path / "disk", "1m") as disk:
        copy = disk / "ws"
        shutil.copytree(ws, copy)
        filler = fill_disk(disk)
        assert_disk_error(copy, "No space left on device", str(copy / ".routeshell"), "sessions.sqlite")
        filler.unlink()
        # The database was fine all along: with space again, it lists the earlier run.
        listed = run_routeshell("--profile", "ci", "sessions", "--workspace", str(copy))
        assert listed.returncode == 0, listed
        assert TASK in listed.stdout


def test_a_disk_that_fills_during_the_plan_rolls_it_back_in_one_line(
    scripted_llm: ScriptedLLM, ws: Path, tmp_path: Path
) -> None:
    """The plan fits when checked; its own command then fills the disk, and a later write fails.
    The plan is rolled back, the run ends in one line (the session cannot be saved either), and
    with space again the session is there."""
    fills = {"op": "run", "argv": ["sh", "-c", "cat /dev/zero > filler 2>/dev/null; exit 0"]}
    late = {"op": "write", "path": "late.txt", "content": "x" * 4096}
    filling = plan(BUILD["steps"][0], fills, late, goal="fill the disk")
    with small_disk(tmp_path / "disk", "2m") as disk:
        copy = disk / "ws"
        shutil.copytree(ws, copy)
        scripted_llm.enqueue(Reply(filling))
        result = run(scripted_llm, copy, "--json", "--topology", "single", "--approve", "all", TASK)
        assert_one_line_error(result, 1, "No space left on device", "sessions.sqlite")
        found = events(result.stdout)
        (reviewed,) = [event for event in found if event["type"] == "reviewed"]
        assert reviewed["status"] == "failed"
        assert reviewed["summary"] == (
            "step 3 (write 'late.txt') failed: No space left on device; the 2 earlier steps were rolled back"
        )
        assert (found[-1]["type"], found[-1]["ok"], found[-1]["exit_code"]) == ("final", False, 1)
        # The plan's own steps are undone; what its command made is the command's, and stays.
        assert (copy / "app.py").read_text() == "VALUE = 1\n"
        assert not (copy / "late.txt").exists()
        (copy / "filler").unlink()
        listed = run_routeshell("--profile", "ci", "sessions", "--workspace", str(copy))
        assert listed.returncode == 0, listed
        assert TASK in listed.stdout
