"""The task history shared by the Agent pane and ``--plain``: one file, one format.

It lives in ``$XDG_STATE_HOME/routeshell/history`` (``~/.local/state`` when unset), one JSON string
per line, so a task holding any character (a newline, a lone surrogate from undecodable input)
survives the round trip. A task typed in one shell is recalled in the other.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from engine.config import xdg
from engine.textfile import read_capped

HISTORY_LIMIT = 500
#: The most bytes the history file is read up to: a thousand tasks of 16 KiB each (most are a line
#: of words). A longer file, or one that is no regular file (a link to ``/dev/zero``), gives none.
MAX_HISTORY_BYTES = 16 << 20


def history_path(env: Mapping[str, str] | None = None) -> Path:
    """Return the task history file: ``$XDG_STATE_HOME/routeshell/history``."""
    return xdg.state_dir(env) / "history"


def load_history(path: Path) -> list[str]:
    """Return the last tasks saved in ``path``, oldest first; a missing or unreadable file gives none.

    A file grown past twice the limit is cut back to the limit, so appending stays cheap forever.
    Lines that are not a JSON string (damage, another format) are skipped. A file longer than
    :data:`MAX_HISTORY_BYTES` counts as unreadable.
    """
    try:
        lines = read_capped(path, MAX_HISTORY_BYTES).decode("utf-8", errors="surrogateescape").splitlines()
    except OSError:
        return []
    if len(lines) > 2 * HISTORY_LIMIT:
        with contextlib.suppress(OSError):
            path.write_text("".join(line + "\n" for line in lines[-HISTORY_LIMIT:]), encoding="utf-8")
    tasks: list[str] = []
    for line in lines[-HISTORY_LIMIT:]:
        try:
            task = json.loads(line)
        except ValueError:
            continue
        if isinstance(task, str) and task.strip():
            tasks.append(task)
    return tasks


def append_task(path: Path, task: str) -> None:
    """Append ``task`` to the history file at ``path``, creating it (private to the user) if needed.

    Raises :class:`OSError` when it cannot be written; callers say so and go on without it.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # ensure_ascii: a lone surrogate becomes \udcxx in the JSON, never an unencodable byte.
    line = json.dumps(task) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(line)
