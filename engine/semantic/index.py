"""The file index: one embedding per regular file of a workspace, kept in ``.routeshell/index.sqlite``.

What is embedded for a file is its workspace-relative path, escaped as the screen shows it
(:func:`~engine.names.display_name`), and its first :data:`HEAD_BYTES` read as UTF-8 text (for a
binary file, the path alone). A row is keyed by the bytes of the path and keeps the file's size,
``mtime_ns``, ``ctime_ns`` and inode: :meth:`FileIndex.update` embeds only the files that are new
or whose ``lstat`` changed (the change time and the inode tell an edit that kept the size and put
the modification time back, and a file replaced by another, which size and time alone do not),
and deletes the rows of files that are gone. The walk is a match's walk
(:func:`~engine.files.match.regular_files`): it never follows a symlink and never enters ``.git``
or ``.routeshell``.

The index never stands in the way of a match. A file there that is not a database or has damaged
pages (seen when they are read), a database of other tables (another program's:
:class:`NotAnIndex`; it is never changed), or one that holds a row this module never writes (a
size that is text, a path that is not bytes or holds a NUL, a vector of the wrong size, not
finite or not of length 1: :class:`IndexDamaged`), is moved aside to ``index.sqlite.broken`` (``.broken.2`` and on
when that is taken, at most :data:`MAX_BROKEN` of them: then the oldest goes) and built again. An
index that cannot be written (a read-only workspace, a full disk, a lock held too long) or that is
not a regular file (a symlink, a directory) is replaced, for that call, by one in memory, which
writes nothing anywhere. Each of these costs one warning line, passed to ``warn``. Two processes
may update one index at once: SQLite's locks serialise their transactions, and a busy one waits
up to :data:`BUSY_TIMEOUT_S`.

This module never imports torch: the vectors come from a :class:`TextEmbedder` it is given.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from engine.files.match import read_head, regular_files
from engine.names import display_name
from engine.semantic import DIMENSIONS, EMBEDDER_ID
from engine.workspace.sandbox import SandboxError, Workspace
from engine.workspace.state import SQLITE_SIDE_FILES, StateError, odd_database_file, state_dir

INDEX_FILE = "index.sqlite"
#: The layout of the tables and the recipe of the embedded text: an index of another version is built again.
SCHEMA_VERSION = "2"
#: How much of each file is embedded after its name.
HEAD_BYTES = 1024
#: How many files are read, embedded and written at a time (progress and cancelling happen in between).
BATCH = 64
#: How long a write waits for another process's transaction before the index falls back to memory.
BUSY_TIMEOUT_S = 10.0
#: The most broken index files kept for a look (index.sqlite.broken, .broken.2, ...).
MAX_BROKEN = 5
#: How far from 1 the length of a stored vector may be. The embedder's vectors are normalised in
#: float32, within about 1e-7 of 1; this leaves room for another machine's rounding.
NORM_TOLERANCE = 1e-3
#: Rows looked up in one query.
_LOOKUP_CHUNK = 500
_BROKEN = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _is_broken(exc: BaseException) -> bool:
    """Whether ``exc`` says the database file is damaged or no database (an extended code too)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and code is not None and code & 0xFF in _BROKEN


Stage = Literal["loading", "embedding"]
#: Called with the stage, the count done and the total (0 while the model loads).
Progress = Callable[[Stage, int, int], None]
#: A file's size, ``mtime_ns``, ``ctime_ns`` and inode: a file whose stamp changed is embedded again.
#: (The change time moves with every change of the file, its metadata too, and no program can set
#: it back: a chmod or a tag costs one embedding, an edit never goes unseen.)
Stamp = tuple[int, int, int, int]


class TextEmbedder(Protocol):
    """What the index needs of an embedder: normalised vectors, (N, 384) float32, for texts."""

    def vectors(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class UpdateCounts:
    """What one :meth:`FileIndex.update` did: files embedded for the first time, embedded again, dropped, kept."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0

    @property
    def embedded(self) -> int:
        return self.added + self.changed


def head_text(data: bytes) -> str:
    """The start of a file as one line of text (runs of white space folded), or "" for binary data.

    Data with a NUL byte, or that is not UTF-8 before its last three bytes (where the cut at
    :data:`HEAD_BYTES` may split a character), is binary.
    """
    if b"\0" in data:
        return ""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(data) - 3:
            return ""
        text = data[: exc.start].decode("utf-8", errors="replace")
    return " ".join(text.split())


def file_text(ws: Workspace, path: str) -> str:
    """What is embedded for the file at ``path``: its escaped path, then the text of its first bytes."""
    head = read_head(ws, path, HEAD_BYTES)
    text = head_text(head) if head else ""
    name = display_name(path)
    return f"{name}\n{text}" if text else name


def _stamp(info: os.stat_result) -> Stamp:
    return _int64(info.st_size), _int64(info.st_mtime_ns), _int64(info.st_ctime_ns), _int64(info.st_ino)


def _int64(value: int) -> int:
    """``value`` as SQLite keeps a whole number: in 64 bits, with sign. A time past 2262 in
    nanoseconds, or an inode number of 2**63 or more (overlayfs, some NFS servers), is stored as
    the negative number of the same bits; it is compared as stored."""
    return (value + 2**63) % 2**64 - 2**63


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction, taken at once (so two writers queue up instead of deadlocking)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _connect(location: str) -> sqlite3.Connection:
    # Autocommit: transactions are explicit (see _transaction), DDL included.
    conn = sqlite3.connect(location, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA temp_store = MEMORY")  # sorting spills to memory, never to a file outside the workspace
    return conn


_META = {"schema": SCHEMA_VERSION, "embedder": EMBEDDER_ID}
_TABLES = {
    "meta": "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "files": "CREATE TABLE files (path BLOB PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
    " ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, vector BLOB NOT NULL) WITHOUT ROWID",
}


class NotAnIndex(Exception):
    """A database that is not a file index (another program's tables): it is set aside, never changed."""


def _objects(conn: sqlite3.Connection) -> dict[str, tuple[str, str | None]]:
    """The tables, views, triggers and indexes of the database by name, with their kind and SQL
    (SQLite's own, ``sqlite_*``, left out)."""
    rows = conn.execute("SELECT name, type, sql FROM sqlite_master").fetchall()
    return {name: (kind, sql) for name, kind, sql in rows if not str(name).startswith("sqlite_")}


def _current(conn: sqlite3.Connection) -> bool:
    """Whether the database is an index of this layout and embedder; raises :class:`NotAnIndex`
    for one that holds anything else (so is another program's, and must not be dropped)."""
    objects = _objects(conn)
    if not objects:
        return False  # a new, empty database
    others = sorted(set(objects) - set(_TABLES))
    if others:
        raise NotAnIndex("it holds " + ", ".join(others[:3]) + (", ..." if len(others) > 3 else ""))
    meta: dict[object, object] = {}
    if objects.get("meta", ("", None))[0] == "table":
        with suppress(sqlite3.OperationalError):  # a meta table of other columns
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if "schema" not in meta:
        raise NotAnIndex("its tables are not those of a file index")
    return meta == _META and all(objects.get(name) == ("table", sql) for name, sql in _TABLES.items())


def _prepare(conn: sqlite3.Connection) -> None:
    """Make the tables, or make them again when they were made by another version or embedder.

    Raises :class:`NotAnIndex`, changing nothing, when the database holds anything but an index.
    """
    if _current(conn):
        return  # only read: an index on a read-only workspace still serves
    with _transaction(conn):
        if _current(conn):
            return  # another process made them meanwhile
        for name, (kind, _sql) in _objects(conn).items():  # meta and files only (see _current)
            conn.execute(f"DROP {kind.upper()} IF EXISTS {name}")
        for sql in _TABLES.values():
            conn.execute(sql)
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", _META.items())


def _memory() -> sqlite3.Connection:
    conn = _connect(":memory:")
    _prepare(conn)
    return conn


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:  # without "[Errno N]" and the names, which the line gives
        return exc.strerror
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _set_aside_name(path: Path) -> Path:
    """Where a broken index at ``path`` goes: ``NAME.broken``, else the first free ``NAME.broken.N``
    (N up to :data:`MAX_BROKEN`), else the oldest of them that is a file, which it replaces. Raises
    :class:`OSError` when each is taken by what is not a file (a directory is never replaced)."""
    names = [path.with_name(f"{path.name}.broken")]
    names += [path.with_name(f"{path.name}.broken.{n}") for n in range(2, MAX_BROKEN + 1)]
    ages: list[tuple[int, Path]] = []
    for name in names:
        try:
            info = name.lstat()
        except FileNotFoundError:
            return name
        if stat.S_ISREG(info.st_mode):
            ages.append((info.st_mtime_ns, name))
    if not ages:
        raise OSError(errno.EEXIST, f"{names[0].name} to {names[-1].name}, where a broken one is moved, are "
                                    "taken by what is not a file; move them away")  # fmt: skip
    return min(ages)[1]


def _made_again(path: Path, warn: Callable[[str], None], what: str) -> sqlite3.Connection:
    """Move the index at ``path`` aside (it is kept for a look, never read again) and make a new one there."""
    broken = _set_aside_name(path)
    os.replace(path, broken)
    for suffix in SQLITE_SIDE_FILES:
        with suppress(FileNotFoundError):
            os.unlink(path.with_name(path.name + suffix))
    warn(f"{path} {what}; moved it to {broken.name} and made a new one")
    conn = _connect(str(path))
    _prepare(conn)
    return conn


class IndexDamaged(Exception):
    """The index held a row it could not have written, or damaged pages; it was set aside and made again, empty."""


def _stamp_of(row: Sequence[object]) -> tuple[bytes, Stamp]:
    """The path bytes and stamp of a row of :meth:`FileIndex.stamps`; raises :class:`IndexDamaged`
    (not yet set aside) for a row of the wrong kind: the index is a database, but not one this wrote."""
    path, size, mtime_ns, ctime_ns, inode, vector_fits = row
    if not isinstance(path, bytes):
        raise IndexDamaged(f"a path that is not bytes ({path!r:.40})")
    if b"\0" in path:  # no file name holds one (and looking one up raises)
        raise IndexDamaged(f"a path with a NUL byte in it ({path!r:.40})")
    stamp = []
    for name, value in (("size", size), ("mtime_ns", mtime_ns), ("ctime_ns", ctime_ns), ("inode", inode)):
        if type(value) is not int:
            raise IndexDamaged(f"a {name} that is not a whole number ({value!r:.40})")
        stamp.append(value)
    if not vector_fits:
        raise IndexDamaged(f"a vector that is not {DIMENSIONS} float32 numbers")
    return path, (stamp[0], stamp[1], stamp[2], stamp[3])


class FileIndex:
    """The vectors of a workspace's files, on disk or (when the disk cannot be used) in memory.

    Open with :meth:`open` and close with :meth:`close` (or ``contextlib.closing``).
    """

    def __init__(self, conn: sqlite3.Connection, location: Path | None, warn: Callable[[str], None]) -> None:
        self.conn = conn
        #: Where the index is kept; None when it is in memory.
        self.location = location
        self._warn = warn

    @classmethod
    def open(cls, root: Path, warn: Callable[[str], None]) -> FileIndex:
        """Open (or make) the index of the workspace at ``root``; ``warn`` gets one line per fallback."""
        try:
            path = state_dir(root) / INDEX_FILE
        except StateError as exc:
            return cls._in_memory(warn, str(exc))
        why = odd_database_file(path)
        if why is not None:
            return cls._in_memory(warn, why)
        try:
            return cls(cls._open_file(path, warn), path, warn)
        except (sqlite3.Error, OSError) as exc:
            return cls._in_memory(warn, f"cannot use the file index {path}: {_reason(exc)}")

    @staticmethod
    def _open_file(path: Path, warn: Callable[[str], None]) -> sqlite3.Connection:
        conn = _connect(str(path))
        try:
            _prepare(conn)
        except NotAnIndex as exc:
            conn.close()
            return _made_again(path, warn, f"was not a routeshell file index ({exc})")
        except sqlite3.DatabaseError as exc:
            conn.close()
            if not _is_broken(exc):
                raise
            return _made_again(path, warn, f"was not a routeshell file index ({_reason(exc)})")
        return conn

    @classmethod
    def _in_memory(cls, warn: Callable[[str], None], why: str) -> FileIndex:
        warn(f"{why}; the file index is kept in memory this time")
        return cls(_memory(), None, warn)

    def close(self) -> None:
        self.conn.close()

    # -- reading and writing, in memory when the disk fails ------------------------------

    def _fall_back(self, exc: BaseException) -> None:
        """Carry on in memory, with a copy of what the disk holds when it can still be read."""
        self._warn(f"cannot use the file index {self.location}: {_reason(exc)}; it is kept in memory this time")
        memory = _connect(":memory:")
        try:
            self.conn.backup(memory)
            if not _current(memory):
                raise sqlite3.DatabaseError("not current")
        except (sqlite3.Error, NotAnIndex):
            memory.close()
            memory = _memory()
        self.conn.close()
        self.conn, self.location = memory, None

    def _write(self, work: Callable[[sqlite3.Connection], object]) -> None:
        """Do ``work`` in a transaction; raises :class:`IndexDamaged` when the file turned out damaged."""
        try:
            with _transaction(self.conn):
                work(self.conn)
        except (sqlite3.Error, OSError) as exc:  # read-only, full, locked too long, damaged
            if _is_broken(exc):
                raise self._damaged(exc) from None
            if self.location is None:
                raise
            self._fall_back(exc)
            with _transaction(self.conn):
                work(self.conn)

    def _read(self, query: str, parameters: Sequence[object] = ()) -> list[Any]:
        """The rows of ``query``; raises :class:`IndexDamaged` when the file turned out damaged."""
        try:
            return self.conn.execute(query, parameters).fetchall()
        except sqlite3.Error as exc:
            if _is_broken(exc):
                raise self._damaged(exc) from None
            if self.location is None:
                raise
            self._fall_back(exc)
            return self.conn.execute(query, parameters).fetchall()

    def _damaged(self, exc: BaseException) -> IndexDamaged:
        """Set aside an index whose pages turned out damaged (a page a query met, past the header
        that opening it read) and go on with a new one; return the error that says so."""
        self._start_over(f"is damaged ({_reason(exc)})")
        return IndexDamaged(_reason(exc))

    # -- the index -----------------------------------------------------------------------

    def _start_over(self, what: str) -> None:
        """Set aside an index that held rows it could not have written or is damaged (``what`` it
        is), as a file that is not a database is, and go on with a new, empty one (in memory when
        the disk cannot take one)."""
        self.conn.close()
        if self.location is not None:
            try:
                self.conn = _made_again(self.location, self._warn, what)
                return
            except (sqlite3.Error, OSError) as exc:
                why = f"it {what} and cannot be set aside ({_reason(exc)})"
                self._warn(f"cannot use the file index {self.location}: {why}; it is kept in memory this time")
        self.conn, self.location = _memory(), None

    def stamps(self) -> dict[bytes, Stamp]:
        """The size, ``mtime_ns``, ``ctime_ns`` and inode each indexed file had when it was embedded, by path bytes.

        An index holding a row of the wrong kind (a size that is text, a path that is not bytes or
        holds a NUL, a vector of the wrong size), or whose pages are damaged, is set aside and made
        again: then there are none.
        """
        query = ("SELECT path, size, mtime_ns, ctime_ns, inode, typeof(vector) = 'blob' AND length(vector) = ? "
                 "FROM files")  # fmt: skip
        try:
            rows = self._read(query, (DIMENSIONS * 4,))
        except IndexDamaged:  # already set aside
            return {}
        try:
            return dict(_stamp_of(row) for row in rows)
        except IndexDamaged as damage:
            self._start_over(f"holds {damage}, which routeshell never writes")
            return {}

    def update(
        self, ws: Workspace, embedder: Callable[[], TextEmbedder],
        files: Iterable[tuple[str, os.stat_result]] | None = None, *, progress: Progress | None = None,
    ) -> UpdateCounts:  # fmt: skip
        """Embed what is new or changed and drop what is gone; return the counts.

        ``files`` (path and ``lstat`` of regular files) limits the update to them, and only rows of
        files no longer there are dropped; by default the whole workspace is walked and every row of
        a file not met is dropped. ``embedder`` is called only when something is to be embedded.
        ``progress`` may raise to stop: what was embedded so far is kept. Raises
        :class:`IndexDamaged` when the file turns out damaged as it is written: it was then set
        aside and made again, empty, so update it again.
        """
        known = self.stamps()
        counts = UpdateCounts()
        todo: list[tuple[str, os.stat_result]] = []
        seen: set[bytes] = set()
        for path, info in regular_files(ws) if files is None else files:
            key = os.fsencode(path)
            seen.add(key)
            stamp = known.get(key)
            if stamp == _stamp(info):
                counts.unchanged += 1
                continue
            todo.append((path, info))
            if stamp is None:
                counts.added += 1
            else:
                counts.changed += 1
        gone = [key for key in known if key not in seen and (files is None or not _is_file(ws, key))]
        if gone:
            self._write(lambda conn: conn.executemany("DELETE FROM files WHERE path = ?", [(key,) for key in gone]))
        counts.removed = len(gone)
        if todo:
            self._embed(ws, embedder, todo, progress)
        return counts

    def _embed(
        self, ws: Workspace, embedder: Callable[[], TextEmbedder], todo: list[tuple[str, os.stat_result]],
        progress: Progress | None,
    ) -> None:  # fmt: skip
        model = embedder()
        for start in range(0, len(todo), BATCH):
            if progress is not None:
                progress("embedding", start, len(todo))
            chunk = todo[start : start + BATCH]
            vectors = model.vectors([file_text(ws, path) for path, _ in chunk])  # (B, 384)
            rows = [
                (os.fsencode(path), *_stamp(info), np.ascontiguousarray(vector, dtype=np.float32).tobytes())
                for (path, info), vector in zip(chunk, vectors, strict=True)
            ]
            self._write(partial(_insert, rows=rows))
        if progress is not None:
            progress("embedding", len(todo), len(todo))

    def vectors(self, paths: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vector of each of ``paths`` that has one: (384,) float32 each.

        Raises :class:`IndexDamaged` when one is not a vector this index could have written (the
        wrong size, a NaN or an infinity, a length that is not 1) or the file is damaged: the index
        was then set aside and made again, empty, so update it again before asking again.
        """
        found: dict[str, np.ndarray] = {}
        keys = [os.fsencode(path) for path in paths]
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for key, blob in self._read(f"SELECT path, vector FROM files WHERE path IN ({marks})", chunk):
                try:
                    found[os.fsdecode(key)] = _vector(blob)
                except IndexDamaged as damage:
                    self._start_over(f"holds {damage}, which routeshell never writes")
                    raise
        return found


def _vector(blob: object) -> np.ndarray:
    if not isinstance(blob, bytes) or len(blob) != DIMENSIONS * 4:
        raise IndexDamaged(f"a vector that is not {DIMENSIONS} float32 numbers")
    vector = np.frombuffer(blob, dtype=np.float32)  # (384,)
    if not np.isfinite(vector).all():
        raise IndexDamaged("a vector that is not finite (a NaN or an infinity in it)")
    # A score is the dot product with the query: only a unit vector keeps it a cosine in [-1, 1],
    # and one far longer would outrank every file. (In float64: the squares of large float32
    # numbers overflow float32.)
    norm = float(np.linalg.norm(vector.astype(np.float64)))
    if abs(norm - 1.0) > NORM_TOLERANCE:
        raise IndexDamaged(f"a vector of length {norm:.3g}, not 1")
    return vector


def _insert(conn: sqlite3.Connection, rows: list[tuple[bytes, int, int, int, int, bytes]]) -> None:
    conn.executemany("INSERT OR REPLACE INTO files (path, size, mtime_ns, ctime_ns, inode, vector) "
                     "VALUES (?, ?, ?, ?, ?, ?)", rows)  # fmt: skip


def _is_file(ws: Workspace, key: bytes) -> bool:
    """Whether the path with these bytes is (still) a regular file; True when that cannot be told."""
    try:
        info = ws.lstat(os.fsdecode(key))
    except SandboxError as exc:
        return getattr(exc, "errno", None) not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV)
    except OSError:
        return True
    return info is not None and stat.S_ISREG(info.st_mode)
