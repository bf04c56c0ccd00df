"""The task history shared by the Agent pane and ``--plain``: one file, one format.

It lives in ``$XDG_STATE_HOME/routeshell/history`` (``~/.local/state`` when unset), one JSON string
per line, so a task holding any character (a newline, a lone surrogate from undecodable input)
survives the round trip. A task typed in one shell is recalled in the other.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from engine.config import xdg
from engine.textfile import read_tail, replace_text

HISTORY_LIMIT = 500
#: The most bytes of the history file that are read: its end. A longer file (a few pasted tasks of a
#: MiB) is cut back to its last tasks; one that is no regular file (a link to ``/dev/zero``) gives none.
MAX_HISTORY_BYTES = 16 << 20
#: How long a shell waits for another to finish with the history before it goes on without the lock
#: (appending) or leaves the cut for later (cutting): a stopped shell never hangs the others.
LOCK_WAIT_S = 2.0


def history_path(env: Mapping[str, str] | None = None) -> Path:
    """Return the task history file: ``$XDG_STATE_HOME/routeshell/history``."""
    return xdg.state_dir(env) / "history"


def load_history(path: Path) -> list[str]:
    """Return the last tasks saved in ``path``, oldest first; a missing or unreadable file gives none.

    A file grown past twice the limit, or past :data:`MAX_HISTORY_BYTES` (a few huge pasted tasks),
    is cut back to its last tasks, replaced whole through a temporary file, so appending stays cheap
    forever and a crash or a full disk leaves the old file. The cut and each append hold a lock
    (:func:`_locked`), so a task another shell appends meanwhile is never lost. Only its last :data:`MAX_HISTORY_BYTES`
    are read. Lines that are not a JSON string (damage, another format) are skipped. A link to
    ``/dev/zero``, a FIFO or a device gives none.
    """
    try:
        tasks, kept, long = _read(path)
    except OSError:
        return []
    if long:
        # Cut under the lock, from what the file holds then: a task another shell appended since
        # the read above is kept (its append waits for the cut, or came before it).
        with _locked(path) as held, contextlib.suppress(OSError):
            if held:
                tasks, kept, long = _read(path)
            if held and long:
                # What is kept is the tasks that fit in half the limit, newest first.
                room, keep = MAX_HISTORY_BYTES // 2, 0
                for line in reversed(kept):
                    room -= len(line.encode("utf-8", errors="surrogateescape")) + 1
                    if room < 0:
                        break
                    keep += 1
                # (through a link, the file it names: a history kept elsewhere stays linked)
                replace_text(Path(os.path.realpath(path)), "".join(line + "\n" for line in kept[len(kept) - keep :]))
    return tasks


def _read(path: Path) -> tuple[list[str], list[str], bool]:
    """The tasks of the history at ``path``, the lines that hold them, and whether it is long enough
    to be cut back. Raises :class:`OSError`."""
    data, whole = read_tail(path, MAX_HISTORY_BYTES)
    lines = data.decode("utf-8", errors="surrogateescape").splitlines()
    tasks: list[str] = []
    kept: list[str] = []
    for line in lines[-HISTORY_LIMIT:]:
        try:
            task = json.loads(line)
        except ValueError:
            continue
        if isinstance(task, str) and task.strip():
            tasks.append(task)
            kept.append(line)
    return tasks, kept, not whole or len(lines) > 2 * HISTORY_LIMIT


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[bool]:
    """Hold the history's lock (``flock`` on the folder of the file it names: no lock file is left
    beside it) while the block runs; yields whether it is held. It is not when the folder cannot be
    opened or another shell holds the lock past :data:`LOCK_WAIT_S`. The kernel lets it go when a
    shell dies holding it."""
    try:
        fd = os.open(Path(os.path.realpath(path)).parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        yield False
        return
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    held = False
                    break
                time.sleep(0.01)
            except OSError:
                held = False
                break
        yield held
    finally:
        os.close(fd)


def append_task(path: Path, task: str) -> None:
    """Append ``task`` to the history file at ``path``, creating it (private to the user) if needed.

    Raises :class:`OSError` when it cannot be written; callers say so and go on without it.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # ensure_ascii: a lone surrogate becomes \udcxx in the JSON, never an unencodable byte.
    line = json.dumps(task) + "\n"
    # (opened under the lock: never a file another shell's cut has just replaced)
    with _locked(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(line)
