"""The task history file is read with a bound: a link to ``/dev/zero``, a FIFO or a file past the
limit gives no history (like any unreadable file), never a MemoryError or a hang."""

from __future__ import annotations

import os
from pathlib import Path

from tui import task_history
from tui.task_history import MAX_HISTORY_BYTES, append_task, load_history


def test_a_link_to_dev_zero_gives_no_history(tmp_path: Path) -> None:
    path = tmp_path / "history"
    path.symlink_to("/dev/zero")
    assert load_history(path) == []


def test_a_fifo_gives_no_history_and_does_not_wait(tmp_path: Path) -> None:
    path = tmp_path / "history"
    os.mkfifo(path)
    assert load_history(path) == []


def test_a_file_past_the_limit_gives_no_history(tmp_path: Path) -> None:
    path = tmp_path / "history"
    with path.open("wb") as handle:
        handle.truncate(MAX_HISTORY_BYTES + 1)  # sparse, one byte past the limit
    assert load_history(path) == []
    assert path.stat().st_size == MAX_HISTORY_BYTES + 1  # left alone, not cut back


def test_a_full_history_of_long_tasks_is_within_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "history"
    for n in range(2 * task_history.HISTORY_LIMIT):
        append_task(path, f"{n} " + "é" * 2000)  # ensure_ascii: 12 KB a line
    assert path.stat().st_size < MAX_HISTORY_BYTES
    tasks = load_history(path)
    assert len(tasks) == task_history.HISTORY_LIMIT
    assert tasks[-1].startswith(f"{2 * task_history.HISTORY_LIMIT - 1} ")
