"""The workspace's state directory, ``<workspace>/.routeshell/``, its lock and its reserve.

Layout::

    lock                      held (flock) by whoever applies, undoes, recovers or empties the trash
    reserve                   a small preallocated file, released so that a delete can be
                              journaled on a full disk (see :func:`release_reserve`)
    journal/<id>/...          one directory per apply (see engine.plans.journal)
    trash/<id>/<n>            what step n of journal <id> deleted, or what undoing it displaced
    sessions.sqlite           agent sessions (see agents.session)

Commands that only read (history, show, trash list, an undo dry run) never create any of it:
they use :func:`existing_state_dir`. Every problem with the directory is a :class:`StateError`,
one line saying which path is wrong and what to do with it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from engine.errors import ExitCode, RouteshellError, keep_errno
from engine.names import shell_word
from engine.workspace.sandbox import STATE_DIR, file_kind

JOURNAL_DIR = "journal"
TRASH_DIR = "trash"
LOCK_FILE = "lock"
RESERVE_FILE = "reserve"
RESERVE_BYTES = 64 * 1024
# How often a --wait on the workspace lock tries again.
LOCK_POLL_S = 0.1
#: The files SQLite keeps beside a database. It opens them by name, as it does the database: it
#: follows symlinks while it resolves the database's name, then opens what it found (side files
#: included) without following one more.
SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


class StateError(RouteshellError):
    """The state directory cannot be used: read-only, full, not ours, or held by another routeshell (exit 1)."""

    exit_code = ExitCode.FAILED


class LockBusy(StateError):
    """Another routeshell holds the workspace lock."""


def move_aside_hint(path: Path) -> str:
    """Return the shell command that moves a broken ``path`` out of the way."""
    return f"move it aside (mv {_quoted(str(path))} {_quoted(f'{path}.broken')}) and try again"


def _quoted(path: str) -> str:
    """``path`` in single quotes, or, when that would not read back (a quote, a control character
    in it), as :func:`~engine.names.shell_word` quotes it."""
    return f"'{path}'" if path.isprintable() and "'" not in path else shell_word(path)


def command_for(root: Path, *words: str) -> str:
    """Return ``routeshell WORDS... --workspace ROOT`` quoted for a POSIX shell: a hint that works when pasted."""
    return " ".join(map(shell_word, ["routeshell", *words, "--workspace", str(root)]))


def workspace_of(path: Path) -> Path:
    """The workspace holding ``path`` (somewhere in or at its state directory), or ``path`` itself."""
    for candidate in (path, *path.parents):
        if candidate.name == STATE_DIR:
            return candidate.parent
    return path


def os_problem(exc: OSError, what: str, path: Path) -> StateError:
    """Turn an OSError met while ``what`` (e.g. "starting a journal") on ``path`` into one line."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "the workspace is not writable here; use a writable copy, or fix its permissions"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        empty = command_for(workspace_of(path), "trash", "empty")
        hint = f"free some space (a plan that only deletes still works; then {empty})"
    elif exc.errno in (errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.EEXIST):
        hint = f"it is not what routeshell keeps there: {move_aside_hint(path)}"
    else:
        hint = "check the workspace's disk and permissions"
    return keep_errno(StateError(f"{what} in {path}: {reason}; {hint}"), exc)


def odd_database_file(path: Path) -> str | None:
    """Say why the SQLite database at ``path`` must not be opened: the first of it and its side files
    that exists as anything but a regular file (a symlink out of the workspace, a directory) or with
    other names (a hard link), in one line that says how to move it aside. None when each is a
    regular file of one name, or absent.
    """
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_SIDE_FILES)):
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            continue
        except OSError as exc:
            return str(os_problem(exc, "cannot look at the database file", candidate))
        odd = odd_database_info(candidate, info)
        if odd is not None:
            return odd
    return None


def odd_database_info(candidate: Path, info: os.stat_result) -> str | None:
    """Say why the database file (or side file) ``candidate``, of status ``info`` (not followed
    through a link), must not be opened, as :func:`odd_database_file` does; None when it may."""
    if not stat.S_ISREG(info.st_mode):
        return f"{candidate} is not a regular file (a {file_kind(info.st_mode)}); {move_aside_hint(candidate)}"
    if info.st_nlink > 1:
        # SQLite writes the file in place: the same file under another name, outside the
        # workspace perhaps, would be written too. (Moving this name aside leaves it as it is.)
        return (f"{candidate} is a hard link ({info.st_nlink} names for one file): writing it would write "
                f"the file under its other names too; {move_aside_hint(candidate)}")  # fmt: skip
    return None


def state_path(root: Path) -> Path:
    """Return where the state directory of ``root`` is, without touching the disk."""
    return Path(root) / STATE_DIR


def _require_dir(path: Path) -> bool:
    """True when ``path`` is a real directory, False when absent; raise when it is anything else."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise os_problem(exc, "cannot read the state directory", path) from None
    if not stat.S_ISDIR(info.st_mode):
        raise StateError(f"{path} is not a directory (a symlink or a file); {move_aside_hint(path)}")
    return True


def existing_state_dir(root: Path, *parts: str) -> Path | None:
    """Return ``.routeshell/<parts>`` when it exists as a real directory, None when it does not.

    For commands that only read: nothing is created. Raises :class:`StateError` when the path
    (or a directory on the way) is something else, such as a file or a symlink.
    """
    path = state_path(root)
    for part in ("", *parts):
        path = path / part if part else path
        if not _require_dir(path):
            return None
    return path


def state_dir(root: Path, *parts: str) -> Path:
    """Return ``.routeshell/<parts>``, creating the directories that are missing.

    Raises :class:`StateError` (one line, naming the path and what to do) when the workspace is
    read-only, full or not ours to write, or when a path on the way is not a real directory.
    """
    path = state_path(root)
    for part in ("", *parts):
        path = path / part if part else path
        if _require_dir(path):
            continue
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            _require_dir(path)  # made by a concurrent routeshell, or something else in its place
        except OSError as exc:
            raise os_problem(exc, "cannot create the state directory", path) from None
        if not part:
            keep_reserve(root)
    return path


@contextmanager
def workspace_lock(root: Path, wait: float = 0) -> Iterator[None]:
    """Hold the workspace's exclusive lock for the ``with`` block.

    ``wait`` is how many seconds to wait for another routeshell to let go (0: fail at once,
    ``math.inf``: wait as long as it takes). Raises :class:`LockBusy` when it is still held,
    :class:`StateError` when the lock cannot be made (read-only workspace, a directory in its place).
    """
    path = state_dir(root) / LOCK_FILE
    # A FIFO or a device in its place is no lock (and is not opened, for what opening a device may
    # do); one put there between this look and the open is refused after it: O_NONBLOCK lets a
    # FIFO open at once instead of waiting, O_NOCTTY keeps a terminal from becoming this one's.
    with suppress(FileNotFoundError):
        _refuse_odd_lock(path, os.lstat(path).st_mode)
    try:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise os_problem(exc, "cannot open the workspace lock", path) from None
    try:
        _refuse_odd_lock(path, os.fstat(fd).st_mode)
    except StateError:
        os.close(fd)
        raise
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(f"another routeshell is changing {root}; try again when it is done") from None
                time.sleep(LOCK_POLL_S)
        yield
    finally:
        os.close(fd)


def _refuse_odd_lock(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise StateError(f"{path} is not a regular file (a {file_kind(mode)}); {move_aside_hint(path)}")


def keep_reserve(root: Path) -> None:
    """Make sure the reserve file exists (best effort: on a full disk it simply is not made).

    The reserve is room set aside while there is room: on a full disk, releasing it lets the
    journal of a plan that only deletes be written, which is how a user frees space.
    """
    path = state_path(root) / RESERVE_FILE
    if os.path.lexists(path):
        return
    tmp = path.with_name(f".{RESERVE_FILE}.tmp")
    try:
        # A leftover is removed, not truncated: under another name too (a hard link), it is not ours.
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError:
        return
    try:
        # Real blocks, not a sparse file: zeros written out.
        write_all(fd, bytes(RESERVE_BYTES))
        os.fsync(fd)
    except OSError:
        os.close(fd)
        with suppress(OSError):
            os.unlink(tmp)
        return
    os.close(fd)
    with suppress(OSError):
        os.rename(tmp, path)


def release_reserve(root: Path) -> bool:
    """Delete the reserve file to free its room; return whether there was one."""
    try:
        os.unlink(state_path(root) / RESERVE_FILE)
    except OSError:
        return False
    return True


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd``, looping on short writes; raise OSError if it cannot."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]
