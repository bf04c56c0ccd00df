"""Replacing a small text file whole: all of the new text or the old file, never half of either."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a fsynced temporary file beside it and a rename.

    Raises OSError (a read-only or full disk, a missing directory); no temporary file is left.
    Text that holds surrogate escapes (a name that is not UTF-8) keeps its original bytes.
    """
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def size_words(size: int) -> str:
    """``size`` bytes in the units the limits are given in: ``64 MiB``, ``512 KiB``, ``100 bytes``."""
    if size >= 1 << 20:
        return f"{size / (1 << 20):g} MiB"
    return f"{size / (1 << 10):g} KiB" if size >= 1 << 10 else f"{size} bytes"


def read_capped(path: str | Path, limit: int, *, regular: bool = True) -> bytes:
    """The bytes of the file at ``path``, reading one byte past ``limit`` and no further, so that a
    file that is endless (``/dev/zero``) or huge cannot take the memory.

    With ``regular`` (the default) only a regular file is read: a FIFO, socket or device is opened
    without waiting for a writer and refused. Raises :class:`OSError` whose ``strerror`` says why
    in a few words ("longer than 1 MiB", "not a regular file", "Is a directory", ...), so that a
    caller's one-line message for an unreadable file covers these too."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_NONBLOCK if regular else 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if regular and not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise OSError(errno.EFBIG, f"longer than {size_words(limit)}", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_tail(path: str | Path, limit: int) -> tuple[bytes, bool]:
    """The last ``limit`` bytes at most of the regular file at ``path``, and whether that is all of
    it. When it is not, what comes before the first line break is left out (the rest of a line cut
    in two), so that every line returned is whole. Raises :class:`OSError` as :func:`read_capped`
    does for what is no regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        start = max(0, info.st_size - limit)
        chunks, total = [], 0
        while total < limit and (chunk := os.pread(fd, min(1 << 20, limit - total), start + total)):
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if start == 0:
        return data, True
    _, broken, rest = data.partition(b"\n")
    return (rest if broken else b""), False


def read_bounded(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of ``path`` (``-``: standard input), reading one byte past ``limit`` and no further,
    so that an endless input (``/dev/zero``, a stuck pipe's writer) cannot take the memory.

    Raises :class:`~engine.errors.UsageError` naming ``what`` when it cannot be read or is longer.
    A pipe (``<(...)``) is read like a file."""
    import sys

    from engine.errors import UsageError
    from engine.names import display_name

    where = f"{what} on standard input" if str(path) == "-" else f"{what} {display_name(str(path))}"
    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(limit + 1)
            if len(data) > limit:
                raise OSError(errno.EFBIG, f"longer than {size_words(limit)}")
        else:
            data = read_capped(path, limit, regular=False)
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            raise UsageError(f"{where} is {exc.strerror}") from None
        raise UsageError(f"{where}: cannot read ({exc.strerror or exc})") from None
    return data
