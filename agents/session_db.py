"""The session database, ``.routeshell/sessions.sqlite``: opening it, and its errors as one line.

SQLite raises the same few exception classes for a damaged file, a full disk and a read-only
workspace. Only a damaged file is worth moving aside; the others say what is wrong with the disk,
as every other write to the state directory does (:func:`engine.workspace.state.os_problem`).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

from engine.workspace.state import (
    SQLITE_SIDE_FILES,
    StateError,
    move_aside_hint,
    odd_database_file,
    odd_database_info,
    os_problem,
)

SESSIONS_DB = "sessions.sqlite"
#: Where Linux lists a process's open files, each a link to what it opened.
_PROC_FD = "/proc/self/fd"
#: Whether the files SQLite opens can be checked against the one checked before it opened them:
#: Linux, where a file can be held (``O_PATH``) without the hold being an open file, whose closing
#: would release the locks SQLite holds on it.
_CAN_PIN = hasattr(os, "O_PATH") and os.path.isdir(_PROC_FD)

#: Result codes (the low byte of an extended code) that mean the file itself is damaged or not a database.
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
#: Under this much free space, an I/O error is taken for a full disk: SQLite reports a shared-memory
#: file it cannot grow on a full disk as an I/O error, not as SQLITE_FULL.
_NEARLY_FULL_BYTES = 64 * 1024


def open_sessions_db(path: Path, *, write: bool = True) -> sqlite3.Connection:
    """Open the session database at ``path`` (made when missing) and return the connection.

    With ``write`` (a run, which checkpoints every step), a database the process cannot write is
    refused here, before any work, rather than at the first checkpoint. Raises :class:`StateError`:
    a file that is not a database, or a database or side file (``-wal``, ``-shm``, ``-journal``)
    that is a symlink or not a regular file, says how to move it aside; a read-only or full disk
    says so.
    """
    # SQLite opens the database and its side files by name and follows a symlink: one leading out
    # of the workspace would have the session written there.
    odd = odd_database_file(path)
    if odd is not None:
        raise StateError(odd)
    if not _CAN_PIN:
        return _connected(path, write, None)
    # A link or another file put in its place after that look would be opened all the same: the
    # file looked at is held, and what SQLite opened is checked against it once it has.
    pinned = _pin(path, write)
    try:
        return _connected(path, write, pinned)
    finally:
        for fd in pinned:
            os.close(fd)


def _connected(path: Path, write: bool, pinned: tuple[int, int] | None) -> sqlite3.Connection:
    """Connect to ``path``; with ``pinned`` (its folder and itself, held), refuse a connection to
    any other file than those."""
    before = _open_files() if pinned else {}
    try:
        # The file exists once pinned: mode=rw has SQLite make none, at a name that may be a link by now.
        conn = (sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, check_same_thread=False, timeout=30)
                if pinned else sqlite3.connect(path, check_same_thread=False, timeout=30))  # fmt: skip
    except sqlite3.Error as exc:
        raise database_problem(exc, path, "cannot open") from None
    try:
        if pinned:
            _check_opened(conn, path, pinned, before)
        # connect() opens anything; the first read is what finds a file that is not a database.
        conn.execute("PRAGMA schema_version").fetchone()
        if write and not (os.access(path.parent, os.W_OK) and os.access(path, os.W_OK)):
            # SQLite opens a database on a read-only disk for reading without a word, and only the
            # first write fails.
            raise os_problem(_denied(path), f"cannot write the session database {path.name}", path.parent)
        if pinned and write:
            # The checkpointer asks for WAL too; asked here, the side files it needs are opened
            # now, and checked, rather than at its first write.
            conn.execute("PRAGMA journal_mode=WAL").fetchone()
            _check_opened(conn, path, pinned, before)
    except sqlite3.Error as exc:
        conn.close()
        raise database_problem(exc, path, "cannot open") from None
    except StateError:
        conn.close()
        raise
    return conn


def _pin(path: Path, write: bool) -> tuple[int, int]:
    """Hold the folder of ``path`` and the file itself, neither through a link, the file made
    when missing and ``write``; refuse anything but a regular file of one name."""
    try:
        folder = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise os_problem(exc, "cannot open the state directory", path.parent) from None
    try:
        fd = _hold(path.name, folder, write)
    except OSError as exc:
        os.close(folder)
        raise os_problem(exc, f"cannot open the session database {path.name}", path.parent) from None
    odd = odd_database_info(path, os.fstat(fd))  # a link held by O_PATH is the link itself
    if odd is not None:
        os.close(fd)
        os.close(folder)
        raise StateError(odd)
    return folder, fd


def _hold(name: str, folder: int, write: bool) -> int:
    # O_PATH: closing this descriptor releases no POSIX lock, unlike closing an open file, which
    # would drop those SQLite holds on the same file through other connections of this process.
    held = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, held, dir_fd=folder)
    except FileNotFoundError:
        if not write:
            raise
    # Made here, where no link is followed (closing it is safe: nothing else has it open), unless
    # another routeshell made it meanwhile.
    with suppress(FileExistsError):
        made = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        os.close(os.open(name, made, 0o600, dir_fd=folder))
    return os.open(name, held, dir_fd=folder)


def _open_files() -> dict[int, tuple[int, int]]:
    """The process's open descriptors, each with the device and inode of what it holds."""
    files = {}
    for entry in os.listdir(_PROC_FD):
        with suppress(OSError):  # closed since it was listed (the listing's own, for one)
            info = os.stat(f"{_PROC_FD}/{entry}")
            files[int(entry)] = (info.st_dev, info.st_ino)
    return files


def _check_opened(
    conn: sqlite3.Connection, path: Path, pinned: tuple[int, int], before: dict[int, tuple[int, int]]
) -> None:
    """Refuse, as a :class:`StateError`, a connection whose files are not the pinned database in
    the pinned folder: SQLite names the file it resolved its name to; the descriptors that hold
    other files than in ``before`` show what it opened, the database's own being the pinned file."""
    folder_fd, fd = pinned
    folder = os.readlink(f"{_PROC_FD}/{folder_fd}")
    held = os.fstat(fd)
    replaced = StateError(
        f"{path} was replaced by a link or another file while it was being opened; "
        "check what else writes to the workspace, and try again"
    )
    if conn.execute("PRAGMA database_list").fetchone()[2] != os.path.join(folder, path.name):
        raise replaced
    sides = {path.name + suffix for suffix in SQLITE_SIDE_FILES}
    for number, identity in _open_files().items():
        if before.get(number) == identity:
            continue  # open before SQLite was asked (a number freed since may hold a new file)
        where = f"{_PROC_FD}/{number}"
        try:
            head, name = os.path.split(os.readlink(where))
            info = os.stat(where)
        except OSError:
            continue  # closed since it was listed
        if name == path.name and (info.st_dev, info.st_ino) != (held.st_dev, held.st_ino):
            raise replaced
        if name in sides:
            odd = odd_database_info(path.with_name(name), info)
            if head != folder:
                raise replaced
            if odd is not None:
                raise StateError(odd)


def database_problem(exc: sqlite3.Error, path: Path, doing: str = "cannot write") -> StateError:
    """Return the one-line error for ``exc``, met while ``doing`` (``cannot open``, ``cannot write``)
    the session database at ``path``."""
    code = getattr(exc, "sqlite_errorcode", None)  # None for an error Python raises itself
    primary = None if code is None else code & 0xFF
    # A database of other tables (another program's, or one routeshell never made) reads as a
    # missing column or table: it is not ours, whatever the disk.
    foreign = primary == sqlite3.SQLITE_ERROR and str(exc).startswith(("no such column", "no such table"))
    if primary in _DAMAGED or foreign:
        return StateError(f"{path} is not a routeshell session database ({exc}); {move_aside_hint(path)}")
    cause = _disk_cause(primary, path)
    if cause is not None:
        return os_problem(cause, f"{doing} the session database {path.name}", path.parent)
    return StateError(f"{doing} the session database {path} ({exc}); check the workspace's disk and permissions")


def _disk_cause(primary: int | None, path: Path) -> OSError | None:
    """The operating-system error behind a SQLite result code, when the disk tells which; None when not."""
    if primary == sqlite3.SQLITE_READONLY:
        return _denied(path)
    if primary == sqlite3.SQLITE_FULL:
        return _error(errno.ENOSPC)
    if primary not in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN):
        return None
    try:
        disk = os.statvfs(path.parent)
    except OSError as exc:
        return exc
    if disk.f_flag & os.ST_RDONLY:
        return _error(errno.EROFS)
    if disk.f_bavail * disk.f_frsize < _NEARLY_FULL_BYTES:
        return _error(errno.ENOSPC)
    return _error(errno.EIO) if primary == sqlite3.SQLITE_IOERR else None


def _denied(path: Path) -> OSError:
    """Why ``path`` cannot be written: a read-only file system, or its permissions."""
    try:
        read_only = bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return _error(errno.EROFS if read_only else errno.EACCES)


def _error(number: int) -> OSError:
    return OSError(number, os.strerror(number))


def checkpointer(conn: sqlite3.Connection) -> Any:
    """LangGraph's SQLite checkpointer on ``conn``, reading back only the types a session holds.

    A ``.routeshell/`` can come with a cloned repository, so its session database is trusted no
    further than a plan: left to its default, the checkpointer's reader imports and calls whatever
    a stored value names (``os.system`` included). Here it builds only plain data and LangGraph's
    own safe types; anything else is read back as data, which the session's checks then refuse.
    """
    import logging

    from langgraph.checkpoint.serde import jsonplus
    from langgraph.checkpoint.sqlite import SqliteSaver

    # Its word on a type it would not build is a warning line of its own; the session's check
    # says what is wrong, in one line that names the database.
    logging.getLogger(jsonplus.__name__).setLevel(logging.ERROR)
    return SqliteSaver(conn, serde=jsonplus.JsonPlusSerializer(allowed_msgpack_modules=None))
