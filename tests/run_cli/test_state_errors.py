"""``routeshell run`` on a workspace whose session database cannot be written: read-only or full.

A database that is fine but cannot be written is one line that says why, exit 1; it is never
called damaged, nor is moving it aside suggested.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import events_checked, isolate_home
from tests.helpers import assert_one_line_error, fill_disk, read_only_view, run_routeshell, small_disk
from tests.run_cli.support import BUILD, closed_port_url, events, plan, run
from tests.scripted_llm import Reply, ScriptedLLM

TASK = "move the notes into old"


@pytest.fixture(scope="module")
def ran_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace a task ran on once (its endpoint down), which left a session database. Made once
    per module: each test that needs one copies it (a run costs a process start and a retry wait)."""
    ws = tmp_path_factory.mktemp("ran-once") / "ws"
    ws.mkdir()
    (ws / "app.py").write_text("VALUE = 1\n")
    with pytest.MonkeyPatch.context() as monkeypatch, events_checked(tmp_path_factory, monkeypatch):
        isolate_home(tmp_path_factory, monkeypatch)
        result = run(closed_port_url(), ws, "--topology", "single", TASK)
    assert result.returncode == 3, result
    assert (ws / ".routeshell" / "sessions.sqlite").is_file()
    return ws


def run_once(ran_once: Path, ws: Path) -> Path:
    """Make ``ws`` a copy of the workspace a task ran on once; return its session database."""
    shutil.rmtree(ws, ignore_errors=True)
    shutil.copytree(ran_once, ws)
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
    ran_once: Path, ws: Path, tmp_path: Path, open_elsewhere: bool
) -> None:
    database = run_once(ran_once, ws)
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


def test_a_full_disk_is_not_called_a_damaged_database(ran_once: Path, ws: Path, tmp_path: Path) -> None:
    run_once(ran_once, ws)
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
            "step 3 (write 'late.txt') failed: No space left on device; the 2 earlier steps were rolled back,"
            " but not what the command changed: files a run step writes itself are not journaled, so rolling"
            " back leaves them"
        )
        assert (found[-1]["type"], found[-1]["ok"], found[-1]["exit_code"]) == ("final", False, 1)
        # The plan's own steps are undone; what its command made is the command's, and stays.
        assert (copy / "app.py").read_text() == "VALUE = 1\n"
        assert not (copy / "late.txt").exists()
        (copy / "filler").unlink()
        listed = run_routeshell("--profile", "ci", "sessions", "--workspace", str(copy))
        assert listed.returncode == 0, listed
        assert TASK in listed.stdout


def sqlite_tables(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return sorted(row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        pytest.param("sessions.sqlite", "link-to-nothing", id="database-to-nothing"),
        pytest.param("sessions.sqlite", "link-to-database", id="database-to-a-database"),
        pytest.param("sessions.sqlite", "directory", id="database-directory"),
        pytest.param("sessions.sqlite", "hard-link-to-database", id="database-hard-linked"),
        pytest.param("sessions.sqlite-wal", "link-to-nothing", id="wal"),
        pytest.param("sessions.sqlite-shm", "link-to-nothing", id="shm"),
        pytest.param("sessions.sqlite-journal", "link-to-nothing", id="journal"),
    ],
)
def test_a_session_database_file_that_is_not_a_regular_file_is_refused(
    ws: Path, tmp_path: Path, name: str, kind: str
) -> None:
    """SQLite opens the database and its side files by name, following a symlink: a link out of the
    workspace is refused like any other state file that is not ours, and nothing is written there."""
    state = ws / ".routeshell"
    state.mkdir()
    if name != "sessions.sqlite":
        with closing(sqlite3.connect(state / "sessions.sqlite")):
            pass  # a real, empty database beside the odd side file
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "victim.sqlite"
    if kind == "link-to-database":
        with closing(sqlite3.connect(target)) as conn:
            conn.execute("CREATE TABLE mine (x)")
    said = "is not a regular file"
    if kind == "directory":
        (state / name).mkdir()
    elif kind == "hard-link-to-database":
        with closing(sqlite3.connect(target)) as conn:
            conn.execute("CREATE TABLE mine (x)")
        os.link(target, state / name)
        said = "is a hard link (2 names for one file)"
    else:
        (state / name).symlink_to(target)
    needles = (f"{state / name} {said}", f"mv '{state / name}' '{state / name}.broken'")
    assert_one_line_error(run(closed_port_url(), ws, "--yes", TASK), 1, *needles)
    if kind == "link-to-nothing" and name == "sessions.sqlite":
        # Every command that opens the session database refuses it the same way (one kind suffices:
        # they share the check, and each costs a process start).
        json = run(closed_port_url(), ws, "--json", "--yes", TASK)
        assert_one_line_error(json, 1, *needles)
        final = events(json.stdout)[-1]
        assert (final["type"], final["ok"], final["exit_code"]) == ("final", False, 1)
        assert_one_line_error(run_routeshell("--profile", "ci", "sessions", "--workspace", str(ws)), 1, *needles)
        piped = run_routeshell("--plain", "--profile", "ci", "--workspace", str(ws), stdin_text=f"{TASK}\n")
        assert_one_line_error(piped, 1, *needles)
    if kind in ("link-to-database", "hard-link-to-database"):
        assert sqlite_tables(target) == ["mine"]
    else:
        assert list(outside.iterdir()) == []
    # Moved aside as the line says, the next run makes a database of its own.
    os.rename(state / name, state / f"{name}.broken")
    assert run(closed_port_url(), ws, "--yes", TASK).returncode == 3
    assert "checkpoints" in sqlite_tables(state / "sessions.sqlite")


def plant(database: Path, value: object) -> None:
    """Put ``value`` where each checkpoint of ``database`` keeps the session's task, as a hostile
    ``.routeshell/`` (a cloned repository's) could."""
    import ormsgpack

    with closing(sqlite3.connect(database)) as conn:
        rows = conn.execute("SELECT thread_id, checkpoint_id, checkpoint FROM checkpoints").fetchall()
        for thread, checkpoint_id, blob in rows:
            data = ormsgpack.unpackb(blob, option=ormsgpack.OPT_NON_STR_KEYS, ext_hook=ormsgpack.Ext)
            data.setdefault("channel_values", {})["task"] = value
            conn.execute("UPDATE checkpoints SET checkpoint = ? WHERE thread_id = ? AND checkpoint_id = ?",
                         (ormsgpack.packb(data), thread, checkpoint_id))  # fmt: skip
        conn.commit()


@pytest.mark.parametrize("planted", ["a call", "a number"])
def test_a_session_database_that_names_code_to_run_runs_nothing(ran_once: Path, tmp_path: Path, planted: str) -> None:
    """A stored value that names a function with its arguments (here os.system) was called as the
    session was read back: listing the sessions or resuming one ran it. Now nothing is called, and
    a value of a shape a run never writes is one line naming the database and how to move it aside."""
    import ormsgpack

    ws = tmp_path / "ws"
    database = run_once(ran_once, ws)
    listed = run_routeshell("sessions", "--json", "--workspace", str(ws))
    thread = events(listed.stdout)[0]["thread"]
    marker = tmp_path / "ran"
    value = ormsgpack.Ext(1, ormsgpack.packb(["os", "system", [f"touch {marker}"]])) if planted == "a call" else 5
    plant(database, value)
    for result in (run_routeshell("sessions", "--workspace", str(ws)),
                   run(closed_port_url(), ws, "--thread", thread, "--resume")):  # fmt: skip
        assert_one_line_error(result, 1, f"{database} holds a session routeshell never wrote", ".broken")
        assert not marker.exists()


def test_a_session_database_of_other_tables_is_named_as_not_ours(tmp_path: Path) -> None:
    """Another program's SQLite database in its place (tables of other columns) is not blamed on the disk."""
    ws = tmp_path / "ws"
    (ws / ".routeshell").mkdir(parents=True)
    database = ws / ".routeshell" / "sessions.sqlite"
    with closing(sqlite3.connect(database)) as conn:
        conn.execute("CREATE TABLE checkpoints (name TEXT, value TEXT)")
        conn.commit()
    for result in (run_routeshell("sessions", "--workspace", str(ws)), run(closed_port_url(), ws, TASK)):
        assert_one_line_error(result, 1, f"{database} is not a routeshell session database (no such column", ".broken")
        assert "disk and permissions" not in result.stderr
