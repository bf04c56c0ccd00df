"""The task history file is read with a bound: a link to ``/dev/zero`` or a FIFO gives no history
(like any unreadable file), never a MemoryError or a hang; a file past the limit is read from its
end and cut back to its last tasks, all or nothing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.helpers import endless, fifo, fill_disk, read_only_view, small_disk, sparse
from tui import task_history
from tui.task_history import MAX_HISTORY_BYTES, append_task, load_history


def test_a_link_to_dev_zero_gives_no_history(tmp_path: Path) -> None:
    path = tmp_path / "history"
    endless(path)
    assert load_history(path) == []


def test_a_fifo_gives_no_history_and_does_not_wait(tmp_path: Path) -> None:
    path = tmp_path / "history"
    fifo(path)
    assert load_history(path) == []


def test_a_file_past_the_limit_of_nothing_but_zeros_gives_no_history(tmp_path: Path) -> None:
    path = tmp_path / "history"
    sparse(path, MAX_HISTORY_BYTES + 1)  # one byte past the limit, no line break in it
    assert load_history(path) == []
    assert path.stat().st_size == 0  # cut back: what was left held no task


def test_huge_pasted_tasks_are_cut_back_and_the_later_tasks_kept(tmp_path: Path) -> None:
    # A few tasks of several MiB pasted into the shell once took the whole history with them: past
    # the limit the file was unreadable, and never cut back.
    path = tmp_path / "history"
    append_task(path, "the first task")
    for n in range(4):
        append_task(path, f"pasted {n} " + "x" * (5 << 20))
    for n in range(3):
        append_task(path, f"later {n}")
    assert path.stat().st_size > MAX_HISTORY_BYTES
    tasks = load_history(path)
    assert tasks[-3:] == ["later 0", "later 1", "later 2"]
    assert "the first task" not in tasks
    assert path.stat().st_size <= MAX_HISTORY_BYTES // 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_history(path)[-3:] == ["later 0", "later 1", "later 2"]
    assert [p.name for p in tmp_path.iterdir()] == ["history"]  # no temporary file left


def test_cutting_back_through_a_link_keeps_the_link(tmp_path: Path) -> None:
    kept = tmp_path / "elsewhere" / "history"
    kept.parent.mkdir()
    for n in range(2 * task_history.HISTORY_LIMIT + 1):
        append_task(kept, f"task {n}")
    path = tmp_path / "history"
    path.symlink_to(kept)
    assert len(load_history(path)) == task_history.HISTORY_LIMIT
    assert path.is_symlink()
    assert kept.read_text().count("\n") == task_history.HISTORY_LIMIT


@pytest.mark.parametrize("refusal", ["full", "read-only"])
def test_a_history_that_cannot_be_cut_back_is_still_read_and_left_whole(tmp_path: Path, refusal: str) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for n in range(2 * task_history.HISTORY_LIMIT + 1):
        append_task(source / "history", f"task {n}")
    before = (source / "history").read_bytes()
    if refusal == "full":
        with small_disk(tmp_path / "disk", "256k") as disk:
            (disk / "history").write_bytes(before)
            fill_disk(disk)
            tasks = load_history(disk / "history")
            after = (disk / "history").read_bytes()
            leftovers = sorted(p.name for p in disk.iterdir())
        assert leftovers == ["filler", "history"]
    else:
        with read_only_view(source, tmp_path / "view") as view:
            tasks = load_history(view / "history")
            after = (view / "history").read_bytes()
    assert tasks[-1] == f"task {2 * task_history.HISTORY_LIMIT}"
    assert len(tasks) == task_history.HISTORY_LIMIT
    assert after == before


def test_a_full_history_of_long_tasks_is_within_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "history"
    for n in range(2 * task_history.HISTORY_LIMIT):
        append_task(path, f"{n} " + "é" * 2000)  # ensure_ascii: 12 KB a line
    assert path.stat().st_size < MAX_HISTORY_BYTES
    tasks = load_history(path)
    assert len(tasks) == task_history.HISTORY_LIMIT
    assert tasks[-1].startswith(f"{2 * task_history.HISTORY_LIMIT - 1} ")


_APPENDER = """
import sys
from pathlib import Path
from tui import task_history
task_history.LOCK_WAIT_S = 600  # (the lock is what is tested: never given up on a loaded machine)
path = Path(sys.argv[1])
for at in range(int(sys.argv[2])):
    task_history.append_task(path, f"task {at}")
"""
_CUTTER = """
import json, sys
from pathlib import Path
from tui import task_history
task_history.HISTORY_LIMIT = 5  # every load past 10 lines cuts the file back
task_history.LOCK_WAIT_S = 600
path, done = Path(sys.argv[1]), Path(sys.argv[2])
seen = []
print(flush=True)  # started
while True:
    finished = done.exists()
    seen.append(task_history.load_history(path))
    if finished:
        break
print(json.dumps(seen))
"""


def test_a_task_appended_while_another_shell_cuts_the_history_is_kept(tmp_path: Path) -> None:
    # One shell cut the history back (read, then replace) while another appended a task between
    # the two: the task was lost. Every load here cuts, so the race is run thousands of times.
    import json
    import subprocess
    import sys

    path, done = tmp_path / "history", tmp_path / "done"
    for at in range(12):
        append_task(path, f"old {at}")
    cutter = subprocess.Popen([sys.executable, "-c", _CUTTER, str(path), str(done)], stdout=subprocess.PIPE, text=True)
    assert cutter.stdout is not None
    cutter.stdout.readline()  # it loads and cuts from now on
    subprocess.run([sys.executable, "-c", _APPENDER, str(path), "1000"], check=True, timeout=120)
    done.touch()
    out, _ = cutter.communicate(timeout=120)
    assert cutter.returncode == 0
    # What each load saw is a run of the last tasks, none missing: a lost task is a gap.
    for seen in json.loads(out):
        numbers = [int(task.split()[1]) for task in seen if task.startswith("task ")]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) if numbers else True, seen
    assert load_history(path)[-1] == "task 999"


def test_a_shell_stopped_holding_the_lock_hangs_no_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl
    import os

    monkeypatch.setattr(task_history, "HISTORY_LIMIT", 5)
    monkeypatch.setattr(task_history, "LOCK_WAIT_S", 0.2)
    path = tmp_path / "history"
    for at in range(12):
        append_task(path, f"task {at}")
    held = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)  # (as a shell stopped with Ctrl-Z in the middle of a cut)
        append_task(path, "task 12")  # written without the lock after the wait
        assert load_history(path)[-1] == "task 12"
        assert len(path.read_text().splitlines()) == 13  # the cut is left for later
    finally:
        os.close(held)
    load_history(path)
    assert len(path.read_text().splitlines()) == 5
