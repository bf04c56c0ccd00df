"""The session database, ``.routeshell/sessions.sqlite``: opening it, and its errors as one line.

SQLite raises the same few exception classes for a damaged file, a full disk and a read-only
workspace. Only a damaged file is worth moving aside; the others say what is wrong with the disk,
as every other write to the state directory does (:func:`engine.workspace.state.os_problem`).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import Any

from engine.workspace.state import StateError, move_aside_hint, odd_database_file, os_problem

SESSIONS_DB = "sessions.sqlite"

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
    try:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
    except sqlite3.Error as exc:
        raise database_problem(exc, path, "cannot open") from None
    try:
        # connect() opens anything; the first read is what finds a file that is not a database.
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        raise database_problem(exc, path, "cannot open") from None
    if write and not (os.access(path.parent, os.W_OK) and os.access(path, os.W_OK)):
        # SQLite opens a database on a read-only disk for reading without a word, and only the
        # first write fails.
        conn.close()
        raise os_problem(_denied(path), f"cannot write the session database {path.name}", path.parent)
    return conn


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
