"""The write-ahead journal of plan applies, kept in the workspace's state directory.

Layout under ``<workspace>/.routeshell/``::

    lock                      held (flock) by whoever applies, undoes or recovers
    journal/<id>/plan.json    the normalised plan and when it was started
    journal/<id>/log.jsonl    one record per step, written and fsynced before the step runs
    journal/<id>/state        applying | applied | rolled-back | undoing | undone
    journal/<id>/backup/<n>   the previous content of a file step n replaced (a hard link)
    trash/<id>/<n>            what step n deleted, or what undoing step n displaced

Plans cannot write into the state directory (the sandbox refuses it), and ``run`` steps see it
read-only.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.workspace.sandbox import STATE_DIR, SandboxError

STATES = ("applying", "applied", "rolled-back", "undoing", "undone")


def state_dir(root: Path) -> Path:
    """Return the workspace's state directory, creating it; refuse one that is not a real directory."""
    path = root / STATE_DIR
    with suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise SandboxError(f"{path} is not a directory (a symlink or a file): refusing to use it as state")
    return path


@contextmanager
def workspace_lock(root: Path) -> Iterator[None]:
    """Hold the workspace's exclusive lock; fail at once if another routeshell holds it."""
    fd = os.open(state_dir(root) / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SandboxError(f"another routeshell is changing {root}; try again when it is done") from None
        yield
    finally:
        os.close(fd)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    _fsync_path(path.parent)


@dataclass
class Journal:
    """One apply: its plan, its step records and its state."""

    root: Path
    id: str

    # The state directory was checked (a real directory, not a symlink) by whoever made this
    # Journal: workspace_lock, journals() or create(); the paths below need no check per access.
    @property
    def dir(self) -> Path:
        return self.root / STATE_DIR / "journal" / self.id

    @property
    def backup_dir(self) -> Path:
        return self.dir / "backup"

    @property
    def trash_dir(self) -> Path:
        return self.root / STATE_DIR / "trash" / self.id

    @classmethod
    def create(cls, root: Path, plan: dict[str, Any], origin: str | None = None) -> Journal:
        """Start a journal for ``plan``; its state is ``applying`` until :meth:`set_state`.

        ``origin`` names who asked for the apply (an agent session's plan id), so that a resumed
        session can tell that a plan was already applied.
        """
        (state_dir(root) / "journal").mkdir(exist_ok=True)
        # A sequence number first, so that names sort in the order the plans were applied.
        sequence = 1 + max((int(j.id.split("-")[0]) for j in journals(root)), default=0)
        journal_id = f"{sequence:05d}-" + time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        journal = cls(root, journal_id)
        journal.dir.mkdir()
        journal.backup_dir.mkdir()
        journal.trash_dir.mkdir(parents=True)
        meta = {"id": journal_id, "started": time.time(), "plan": plan, "origin": origin}
        # ASCII: a non-UTF-8 file name is a lone surrogate here, and only its \u escape can be stored.
        write_file_atomic(journal.dir / "plan.json", json.dumps(meta, ensure_ascii=True).encode())
        journal.set_state("applying")
        return journal

    def set_state(self, state: str) -> None:
        assert state in STATES
        write_file_atomic(self.dir / "state", state.encode())

    @property
    def state(self) -> str:
        try:
            return (self.dir / "state").read_text().strip()
        except FileNotFoundError:
            return "applying"  # crashed before the state file was written: nothing ran yet

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = json.loads((self.dir / "plan.json").read_text(encoding="utf-8"))
        return meta

    def record(self, entry: dict[str, Any]) -> None:
        """Append one step record and make it durable before the step runs."""
        line = (json.dumps(entry, ensure_ascii=True) + "\n").encode()  # see plan.json
        fd = os.open(self.dir / "log.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[dict[str, Any]]:
        """Return the step records; a torn last line (a crash mid-write) is dropped."""
        try:
            text = (self.dir / "log.jsonl").read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        records = []
        for line in text.splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return records


def journals(root: Path) -> list[Journal]:
    """Return every journal of the workspace, oldest first."""
    directory = state_dir(root) / "journal"
    if not directory.is_dir():
        return []
    return [Journal(root, entry.name) for entry in sorted(directory.iterdir(), key=lambda p: p.name)]


def applied_from(root: Path, origin: str) -> Journal | None:
    """Return the applied (or since undone) journal whose plan came from ``origin``, if any."""
    for journal in reversed(journals(root)):
        if journal.state in ("applied", "undoing", "undone") and journal.meta.get("origin") == origin:
            return journal
    return None
